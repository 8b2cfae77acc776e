"""A tiny HTTP/1.1 reader/writer over raw sockets.

Why not ``http.client`` / ``http.server``: each pulls in ``email`` (and often ``ssl``),
30-40 ms and ~8 MB at import, paid on every cold start. The local Extensions and
Telemetry APIs and the listener need only Content-Length or chunked bodies.
"""

from __future__ import annotations

import socket
from typing import BinaryIO, NamedTuple

#: Longest header section accepted; guards the listener against garbage.
MAX_HEADER_BYTES = 64 * 1024


class HTTPError(OSError):
    """The peer spoke something that is not the HTTP/1.1 we understand."""


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


class Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def _read_headers(rfile: BinaryIO) -> tuple[str, dict[str, str]] | None:
    """Start line and lower-cased headers, or None on a clean EOF before any byte."""
    first = rfile.readline(MAX_HEADER_BYTES)
    while first in (b"\r\n", b"\n"):  # tolerate stray CRLF between keep-alive messages
        first = rfile.readline(MAX_HEADER_BYTES)
    if not first:
        return None
    if not first.endswith(b"\n"):
        raise HTTPError("start line too long or truncated")
    headers: dict[str, str] = {}
    total = len(first)
    while True:
        line = rfile.readline(MAX_HEADER_BYTES)
        total += len(line)
        if not line.endswith(b"\n") or total > MAX_HEADER_BYTES:
            raise HTTPError("header section truncated or too long")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise HTTPError(f"malformed header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return first.decode("latin-1").strip(), headers


def _read_exact(rfile: BinaryIO, n: int) -> bytes:
    data = rfile.read(n)
    if data is None or len(data) != n:
        raise HTTPError(f"connection closed mid-body ({0 if data is None else len(data)} of {n} bytes)")
    return data


def _read_body(rfile: BinaryIO, headers: dict[str, str], *, until_eof: bool) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size_line = rfile.readline(1024)
            if not size_line.endswith(b"\n"):
                raise HTTPError("truncated chunk size")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(MAX_HEADER_BYTES) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(parts)
            parts.append(_read_exact(rfile, size))
            rfile.readline(8)  # CRLF after each chunk
    length = headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError as e:
            raise HTTPError(f"bad Content-Length {length!r}") from e
        return _read_exact(rfile, n) if n > 0 else b""
    return rfile.read() if until_eof else b""


def read_request(rfile: BinaryIO) -> Request | None:
    """Read one request (None when the peer closed the connection cleanly)."""
    head = _read_headers(rfile)
    if head is None:
        return None
    start, headers = head
    parts = start.split(" ")
    if len(parts) < 2:
        raise HTTPError(f"malformed request line {start[:80]!r}")
    return Request(parts[0].upper(), parts[1], headers, _read_body(rfile, headers, until_eof=False))


def read_response(rfile: BinaryIO, *, head_request: bool = False) -> Response:
    head = _read_headers(rfile)
    if head is None:
        raise HTTPError("connection closed before a response")
    start, headers = head
    parts = start.split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError) as e:
        raise HTTPError(f"malformed status line {start[:80]!r}") from e
    if head_request or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b"")
    return Response(status, headers, _read_body(rfile, headers, until_eof=True))


def encode_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float | None = None,
) -> Response:
    """One request on a fresh connection (``Connection: close``); loopback use only.

    ``timeout=None`` blocks forever, as the Extensions API's ``next`` requires.
    """
    all_headers = dict(headers or {})
    all_headers["Connection"] = "close"
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.settimeout(timeout)
        host = f"{address[0]}:{address[1]}"
        sock.sendall(encode_request(method, path, host, all_headers, body))
        with sock.makefile("rb") as rfile:
            return read_response(rfile, head_request=method == "HEAD")


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) to a socket address."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    return host, int(port) if port else default_port
