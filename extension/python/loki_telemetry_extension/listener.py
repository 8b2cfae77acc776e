"""The Telemetry API destination: an HTTP listener that only says 200 and hands bodies on.

Never prints: anything written to stderr here would come back as an ``extension``
record, get written again, and so on. Built on ``_socket``/``_thread`` so it can be up
before ``threading``/``socket`` are imported (see lifecycle: init speed).
"""

from __future__ import annotations

import _socket
import _thread

from . import http11

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"
BAD_RESPONSE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
#: Lambda holds one keep-alive connection; this is only the accept backlog.
BACKLOG = 16


class Listener:
    """Binds 0.0.0.0 on an ephemeral port; ``sink(body)`` runs after the 200 is sent."""

    def __init__(self, sink: Callable[[bytes], None], *, host: str = "0.0.0.0", port: int = 0) -> None:
        self._sink = sink
        self._sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        self._sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(BACKLOG)
        self.port: int = self._sock.getsockname()[1]
        self._closed = False

    def start(self) -> None:
        _thread.start_new_thread(self._accept_loop, ())

    def close(self) -> None:
        self._closed = True
        try:  # noqa: SIM105 - contextlib costs import time
            self._sock.close()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                fd, _ = self._sock._accept()  # type: ignore[attr-defined]  # _socket's accept
            except OSError:
                if self._closed:
                    return
                continue
            try:
                conn = _socket.socket(fileno=fd)
            except OSError:
                continue
            try:
                _thread.start_new_thread(self._serve, (conn,))
            except Exception:  # no thread to be had: serve inline rather than lose the delivery
                self._serve(conn)

    def _serve(self, conn: _socket.socket) -> None:
        try:
            conn.settimeout(None)
            conn.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            rfile = http11.SocketReader(conn)
            while True:
                try:
                    req = http11.read_request(rfile, lambda: conn.sendall(CONTINUE_RESPONSE))
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
        except Exception:  # a broken peer connection is Lambda's to retry
            pass
        finally:
            try:  # noqa: SIM105
                conn.close()
            except OSError:
                pass
