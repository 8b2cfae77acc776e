"""A tiny HTTP/1.1 reader/writer over raw ``_socket`` sockets.

Why not ``http.client`` / ``http.server``: each pulls in ``email`` (and often ``ssl``),
30-40 ms and ~8 MB at import, paid on every cold start. Even ``socket`` costs a few ms
(it imports ``enum``), so the init path (register, listener, subscribe, next) uses the
C module ``_socket`` directly. The local Extensions and Telemetry APIs and the
listener need only Content-Length or chunked bodies.
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    class Readable(Protocol):
        def readline(self, limit: int = -1, /) -> bytes: ...
        def read(self, n: int = -1, /) -> bytes: ...


#: Longest header section accepted; guards the listener against garbage.
MAX_HEADER_BYTES = 64 * 1024
RECV_BYTES = 65536


class HTTPError(OSError):
    """The peer spoke something that is not the HTTP/1.1 we understand."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers  # names lower-cased
        self.body = body

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.headers!r}, {self.body[:80]!r})"


class Request:
    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers  # names lower-cased
        self.body = body

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and (self.method, self.path, self.headers, self.body) == (
            other.method, other.path, other.headers, other.body)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.path!r}, {self.headers!r}, {self.body[:80]!r})"


class SocketReader:
    """Buffered ``readline``/``read`` over a socket (what ``socket.makefile`` gives, minus io layers)."""

    __slots__ = ("_buf", "_sock")

    def __init__(self, sock: _socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self._sock.recv(RECV_BYTES)
        if not data:
            return False
        self._buf += data
        return True

    def readline(self, limit: int = -1, /) -> bytes:
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if i >= 0:
                end = i + 1
                break
            if 0 <= limit <= len(self._buf):
                end = limit
                break
            start = len(self._buf)
            if not self._fill():
                end = len(self._buf)
                break
        if 0 <= limit < end:
            end = limit
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            while self._fill():
                pass
            n = len(self._buf)
        while len(self._buf) < n and self._fill():
            pass
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


def _read_headers(rfile: Readable) -> tuple[str, dict[str, str]] | None:
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


def _read_exact(rfile: Readable, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise HTTPError(f"connection closed mid-body ({len(data)} of {n} bytes)")
    return data


def _read_body(rfile: Readable, headers: dict[str, str], *, until_eof: bool) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size_line = rfile.readline(1024)
            if not size_line.endswith(b"\n"):
                raise HTTPError("truncated chunk size")
            try:
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError as e:
                raise HTTPError(f"bad chunk size {size_line[:40]!r}") from e
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


def read_request(rfile: Readable, on_continue: Callable[[], object] | None = None) -> Request | None:
    """Read one request (None when the peer closed the connection cleanly).

    ``on_continue`` is called before reading the body of an ``Expect: 100-continue``
    request (it should send ``100 Continue``; the peer waits for it, e.g. curl).
    """
    head = _read_headers(rfile)
    if head is None:
        return None
    start, headers = head
    parts = start.split(" ")
    if len(parts) < 2:
        raise HTTPError(f"malformed request line {start[:80]!r}")
    if on_continue is not None and headers.get("expect", "").lower() == "100-continue":
        on_continue()
    return Request(parts[0].upper(), parts[1], headers, _read_body(rfile, headers, until_eof=False))


def read_response(rfile: Readable, *, head_request: bool = False) -> Response:
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


def connect(
    address: tuple[str, int],
    timeout: float | None,
    *,
    tls: bool = False,
    ssl_context: Any = None,
    deadline: float | None = None,
) -> _socket.socket:
    """The one way the extension opens a connection: every address of the host in order (like
    ``socket.create_connection``), on ``_socket``; with ``tls`` wrapped by ``ssl_context`` (default:
    the system's CAs, hostname checked). ``ssl``/``socket`` are imported only for TLS (Loki over
    https, AWS endpoints): never on the init path. With ``deadline`` (monotonic), the connect and
    the TLS handshake together get only what is left of it.
    """
    if deadline is not None:
        timeout = _left(deadline)
    sock = _tcp(address, timeout)
    if not tls:
        return sock
    import socket
    import ssl

    plain = socket.socket(fileno=sock.detach())
    try:
        plain.settimeout(_left(deadline) if deadline is not None else timeout)
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        wrapped: _socket.socket = context.wrap_socket(plain, server_hostname=address[0])
        return wrapped
    except BaseException:
        plain.close()
        raise


def _left(deadline: float) -> float:
    import time

    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no time left for the push")
    return left


def _tcp(address: tuple[str, int], timeout: float | None) -> _socket.socket:
    host, port = address
    last: OSError | None = None
    try:
        # ASCII host as bytes: a str makes getaddrinfo import encodings.idna (~5 ms at init).
        lookup: str | bytes = host.encode("ascii")
    except UnicodeEncodeError:
        lookup = host
    for family, type_, proto, _, sockaddr in _socket.getaddrinfo(lookup, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, type_, proto)
        try:
            sock.settimeout(timeout)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
            return sock
        except OSError as e:
            sock.close()
            last = e
    raise last if last is not None else OSError(f"cannot resolve {host!r}")


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    timeout: float | None = None,
    after_send: Callable[[], object] | None = None,
) -> Response:
    """One request on a fresh connection (``Connection: close``); loopback use only.

    ``timeout=None`` blocks forever, as the Extensions API's ``next`` requires.
    ``after_send`` runs once the request is on the wire, before waiting for the answer.
    """
    all_headers = dict(headers or {})
    all_headers["Connection"] = "close"
    sock = connect(address, timeout)
    try:
        sock.sendall(encode_request(method, path, f"{address[0]}:{address[1]}", all_headers, body))
        if after_send is not None:
            after_send()
        return read_response(SocketReader(sock), head_request=method == "HEAD")
    finally:
        sock.close()


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
