"""The HTTP/1.1 request body, by Content-Length or chunked: one reader for every harness server."""

from __future__ import annotations

from email.message import Message
from typing import Protocol, overload


class Readable(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


@overload
def read_body(rfile: Readable, headers: Message, limit: None = None) -> bytes: ...


@overload
def read_body(rfile: Readable, headers: Message, limit: int) -> bytes | None: ...


def read_body(rfile: Readable, headers: Message, limit: int | None = None) -> bytes | None:
    """The request body from ``rfile``; None once it passes ``limit`` bytes (no limit: None).

    A chunked body is read to its last chunk, then its trailers and the blank line that ends
    it, so the next request on a keep-alive connection starts at its request line.
    """
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += rfile.read(size)
            rfile.readline()
            if limit is not None and len(out) > limit:
                return None
    length = int(headers.get("Content-Length") or 0)
    if limit is not None and length > limit:
        return None
    return rfile.read(length) if length else b""
