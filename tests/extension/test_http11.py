"""http11 (the tiny HTTP/1.1 reader/writer) and the telemetry listener."""

from __future__ import annotations

import io
import queue
import socket
import threading
from collections.abc import Iterator

import pytest
from loki_telemetry_extension import http11
from loki_telemetry_extension.listener import Listener
from loki_telemetry_extension.telemetry_api import subscribe_body


def test_read_request_content_length() -> None:
    raw = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    req = http11.read_request(io.BytesIO(raw))
    assert req == http11.Request("POST", "/x", {"host": "a", "content-length": "5"}, b"hello")


def test_read_request_chunked_with_trailer() -> None:
    raw = (
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
    )
    req = http11.read_request(io.BytesIO(raw))
    assert req is not None and req.body == b"hello world"


def test_read_request_eof_is_none() -> None:
    assert http11.read_request(io.BytesIO(b"")) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
        b"POST / HTTP/1.1\r\nBadHeader\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a",
    ],
)
def test_malformed_requests_raise_http_error(raw: bytes) -> None:
    with pytest.raises(http11.HTTPError):
        http11.read_request(io.BytesIO(raw))


def test_read_response_variants() -> None:
    r = http11.read_response(io.BytesIO(b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"))
    assert (r.status, r.headers, r.body) == (204, {"x": "y"}, b"")
    r = http11.read_response(io.BytesIO(b"HTTP/1.0 200 OK\r\n\r\nuntil eof"))
    assert r.body == b"until eof"
    with pytest.raises(http11.HTTPError):
        http11.read_response(io.BytesIO(b"HTTP/1.1 abc\r\n\r\n"))


def test_encode_request() -> None:
    assert http11.encode_request("PUT", "/p", "h:1", {"A": "b"}, b"xy") == (
        b"PUT /p HTTP/1.1\r\nHost: h:1\r\nA: b\r\nContent-Length: 2\r\n\r\nxy"
    )


@pytest.mark.parametrize(
    ("value", "addr"),
    [
        ("127.0.0.1:9001", ("127.0.0.1", 9001)),
        ("host", ("host", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", 80)),
    ],
)
def test_split_hostport(value: str, addr: tuple[str, int]) -> None:
    assert http11.split_hostport(value, 80) == addr


def test_subscribe_body_is_valid_json() -> None:
    import json

    body = json.loads(
        subscribe_body(["platform", "function"], 4321, max_items=1000, max_bytes=262144, timeout_ms=25)
    )
    assert body == {
        "schemaVersion": "2025-01-29",
        "types": ["platform", "function"],
        "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4321"},
    }


@pytest.fixture
def listener() -> Iterator[tuple[Listener, queue.Queue[bytes]]]:
    got: queue.Queue[bytes] = queue.Queue()
    lst = Listener(got.put, host="127.0.0.1")
    lst.start()
    yield lst, got
    lst.close()


def _exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        while True:
            c = s.recv(65536)
            if not c:
                return b"".join(chunks)
            chunks.append(c)


def test_listener_answers_200_on_any_path_and_hands_bodies_on(
    listener: tuple[Listener, queue.Queue[bytes]],
) -> None:
    lst, got = listener
    assert lst.port > 0
    reply = _exchange(
        lst.port,
        b"POST /any/path HTTP/1.1\r\nContent-Length: 3\r\n\r\n[1]"
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n[2]",
    )  # two on one keep-alive connection
    assert reply.count(b"HTTP/1.1 200 OK") == 2
    assert got.get(timeout=5) == b"[1]" and got.get(timeout=5) == b"[2]"


def test_listener_survives_garbage_and_a_failing_sink() -> None:
    calls = threading.Event()

    def sink(body: bytes) -> None:
        calls.set()
        raise RuntimeError("boom")

    lst = Listener(sink, host="127.0.0.1")
    lst.start()
    try:
        assert _exchange(lst.port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert _exchange(lst.port, b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]").startswith(
            b"HTTP/1.1 200"
        )
        assert calls.wait(5)
        # still serving after the sink raised
        assert _exchange(lst.port, b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]").startswith(
            b"HTTP/1.1 200"
        )
    finally:
        lst.close()


def test_listener_binds_all_interfaces_by_default() -> None:
    lst = Listener(lambda b: None)
    try:
        assert lst._sock.getsockname()[0] == "0.0.0.0"
    finally:
        lst.close()


def test_listener_answers_expect_100_continue(listener: tuple[Listener, queue.Queue[bytes]]) -> None:
    lst, got = listener
    with socket.create_connection(("127.0.0.1", lst.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")  # the peer waits for this
        s.sendall(b"[]")
        assert b"200 OK" in s.recv(100)
    assert got.get(timeout=5) == b"[]"
