"""A minimal Extensions-API + Telemetry-API stub on 127.0.0.1 that timestamps calls.

Just enough protocol for the init figure: register, subscribe (200),
the first ``next`` (held until the bench releases it with SHUTDOWN), error
endpoints, and a Loki push sink answering 204. Timestamps are
``time.monotonic_ns()`` taken as each request arrives.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

EXT_ID = "bench-ext-0001"


class _Handler(BaseHTTPRequestHandler):
    server: _StubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep the bench output clean
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        now = time.monotonic_ns()
        self._body()
        if self.path.endswith("/extension/register"):
            self.server.mark("register", now)
            body = json.dumps({"functionName": "bench", "functionVersion": "$LATEST", "handler": "x.h"})
            self._reply(200, body.encode(), {"Lambda-Extension-Identifier": EXT_ID})
        elif self.path.endswith("/error"):
            self.server.mark("error", now)
            self._reply(202, b"{}")
        else:  # Loki push or anything else
            self._reply(204)

    def do_PUT(self) -> None:
        now = time.monotonic_ns()
        self._body()
        self.server.mark("subscribe", now)
        self._reply(200, b'"OK"')

    def do_GET(self) -> None:
        now = time.monotonic_ns()
        if self.path.endswith("/event/next"):
            self.server.mark("next", now)
            self.server.release.wait(timeout=60)
            deadline = int(time.time() * 1000) + 2000
            body = json.dumps({"eventType": "SHUTDOWN", "deadlineMs": deadline, "shutdownReason": "spindown"})
            self._reply(200, body.encode(), {"Lambda-Extension-Event-Identifier": "shutdown"})
        else:
            self._reply(404)


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cond = threading.Condition()
        self.times: dict[str, int] = {}
        self.release = threading.Event()

    def mark(self, what: str, ns: int) -> None:
        with self.cond:
            self.times.setdefault(what, ns)
            self.cond.notify_all()


class ExtensionsApiStub:
    """One stub per extension start: ``with ExtensionsApiStub() as s: ... s.wait_for('next')``."""

    def __init__(self) -> None:
        self._srv = _StubServer()
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._srv.server_address[:2]
        return f"{host!s}:{port}"

    def mark(self, what: str) -> None:
        """Record an event seen outside HTTP (e.g. the process exited)."""
        self._srv.mark(what, time.monotonic_ns())

    def wait_for(self, what: str, timeout: float, or_else: str | None = None) -> int | None:
        """Arrival time (monotonic ns) of the first ``what`` call; None at the deadline or
        as soon as ``or_else`` is marked first."""
        with self._srv.cond:
            self._srv.cond.wait_for(
                lambda: what in self._srv.times or (or_else is not None and or_else in self._srv.times),
                timeout=timeout,
            )
            return self._srv.times.get(what)

    def times(self) -> dict[str, int]:
        with self._srv.cond:
            return dict(self._srv.times)

    def release_shutdown(self) -> None:
        self._srv.release.set()

    def __enter__(self) -> ExtensionsApiStub:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._srv.release.set()
        self._srv.shutdown()
        self._srv.server_close()
