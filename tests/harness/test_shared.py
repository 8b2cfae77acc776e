"""harness._shared: the request-body reader every harness server uses, and MotoServer's start."""

from __future__ import annotations

import io
import socket
from email.message import Message
from pathlib import Path

import pytest

from harness._shared.gobuild import GoBuildError, go_build
from harness._shared.http_body import read_body
from harness._shared.moto import MotoServer


def _headers(**fields: str) -> Message:
    msg = Message()
    for name, value in fields.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_content_length_body_leaves_the_next_request_unread() -> None:
    rfile = io.BytesIO(b"hello" + b"GET / HTTP/1.1\r\n")
    assert read_body(rfile, _headers(Content_Length="5")) == b"hello"
    assert rfile.read() == b"GET / HTTP/1.1\r\n"


def test_chunked_body_with_extensions_and_trailers_leaves_the_next_request_unread() -> None:
    wire = b"5;name=x\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\n"
    rfile = io.BytesIO(wire)
    assert read_body(rfile, _headers(Transfer_Encoding="chunked")) == b"hello world"
    # Keep-alive: the trailers and the blank line are consumed, nothing more.
    assert rfile.read() == b"GET / HTTP/1.1\r\n"


def test_limit_refuses_both_framings_past_it_and_only_past_it() -> None:
    assert read_body(io.BytesIO(b"x" * 10), _headers(Content_Length="10"), 10) == b"x" * 10
    assert read_body(io.BytesIO(b"x" * 11), _headers(Content_Length="11"), 10) is None
    chunked = b"6\r\nxxxxxx\r\n6\r\nxxxxxx\r\n0\r\n\r\n"
    assert read_body(io.BytesIO(chunked), _headers(Transfer_Encoding="chunked"), 12) == b"x" * 12
    assert read_body(io.BytesIO(chunked), _headers(Transfer_Encoding="chunked"), 11) is None


def test_no_body_headers_mean_an_empty_body() -> None:
    assert read_body(io.BytesIO(b"GET / HTTP/1.1\r\n"), _headers()) == b""


def test_moto_that_cannot_start_says_why() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = MotoServer(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match=r"moto_server exited .* in use"):
            server.start()


def test_go_build_failure_quotes_the_compiler(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module broken\n\ngo 1.22\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() { undefinedName() }\n")
    with pytest.raises(GoBuildError, match="undefined: undefinedName"):
        go_build(tmp_path, tmp_path / "bootstrap")
