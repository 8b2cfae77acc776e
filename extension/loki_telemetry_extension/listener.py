"""The Telemetry API destination: an HTTP listener that only says 200 and hands bodies on.

Never prints: anything written to stderr here would come back as an ``extension``
record, get written again, and so on.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from . import http11

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
BAD_RESPONSE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: Lambda holds one keep-alive connection; this is only the accept backlog.
BACKLOG = 16


class Listener:
    """Binds 0.0.0.0 on an ephemeral port; ``sink(body)`` runs after the 200 is sent."""

    def __init__(self, sink: Callable[[bytes], None], *, host: str = "0.0.0.0", port: int = 0) -> None:
        self._sink = sink
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(BACKLOG)
        self.port: int = self._sock.getsockname()[1]
        self._closed = False

    def start(self) -> None:
        threading.Thread(target=self._accept_loop, name="loki-listener", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        try:  # noqa: SIM105 - contextlib costs import time
            self._sock.close()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                continue
            try:
                threading.Thread(target=self._serve, args=(conn,), name="loki-conn", daemon=True).start()
            except Exception:  # no thread to be had: serve inline rather than lose the delivery
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn, conn.makefile("rb") as rfile:
                while True:
                    try:
                        req = http11.read_request(rfile)
                    except (http11.HTTPError, ValueError):
                        conn.sendall(BAD_RESPONSE)
                        return
                    if req is None:
                        return
                    # Answer first: Lambda waits for us, and a slow answer loses records.
                    conn.sendall(OK_RESPONSE)
                    if req.method == "POST" and req.body:
                        try:  # noqa: SIM105 - contextlib costs import time
                            self._sink(req.body)
                        except Exception:
                            pass
                    if req.headers.get("connection", "").lower() == "close":
                        return
        except Exception:
            pass
