"""The one HTTP server of the sandbox: Runtime API, Extensions API and Telemetry API.

It only parses HTTP and routes; every decision is the current Environment's.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .._shared.http_body import read_body
from ._environment import Environment
from ._state import Reply

RUNTIME = "/2018-06-01/runtime"
EXTENSION = "/2020-01-01/extension"
TELEMETRY = "/2022-07-01/telemetry"
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_INVOCATION = re.compile(rf"^{RUNTIME}/invocation/([^/]+)/(response|error)$")


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: awslambdaric's native client reuses its connection.
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default per-request stderr log."""

    def _send(self, reply: Reply | None) -> None:
        if reply is None:
            # The environment ended while this call waited: drop the connection, as a
            # killed sandbox would.
            self.close_connection = True
            return
        status, headers, body = reply
        # One write for head and body: two small writes meet Nagle + delayed ACK and
        # cost ~40 ms per keep-alive exchange.
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    def _route(self, method: str) -> None:
        env = self.server.environment()
        path = self.path.split("?", 1)[0].rstrip("/")
        body = read_body(self.rfile, self.headers) if method in ("POST", "PUT") else b""
        if env is None:
            self._send((503, {}, b""))
            return
        ext_id = self.headers.get("Lambda-Extension-Identifier")
        reply: Reply | None
        if method == "GET" and path == f"{RUNTIME}/invocation/next":
            reply = env.runtime_next()
        elif method == "POST" and (m := _INVOCATION.match(path)):
            is_error = m.group(2) == "error"
            reply = env.runtime_result(
                m.group(1), body, self.headers.get("Lambda-Runtime-Function-Error-Type"), is_error
            )
        elif method == "POST" and path == f"{RUNTIME}/init/error":
            reply = env.runtime_init_error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
        elif method == "POST" and path == f"{EXTENSION}/register":
            reply = env.register(self.headers.get("Lambda-Extension-Name"), body)
        elif method == "GET" and path == f"{EXTENSION}/event/next":
            reply = env.extension_next(ext_id)
        elif method == "POST" and path in (f"{EXTENSION}/init/error", f"{EXTENSION}/exit/error"):
            kind = "init" if path.endswith("init/error") else "exit"
            reply = env.extension_error(
                ext_id, kind, self.headers.get("Lambda-Extension-Function-Error-Type")
            )
        elif method == "PUT" and path == TELEMETRY:
            reply = env.subscribe(ext_id, body)
        else:
            reply = (404, {"Content-Type": "text/plain"}, f"no route for {method} {path}".encode())
        try:
            self._send(reply)
        except OSError:
            # The caller died (crash, SIGKILL) before reading its answer.
            self.close_connection = True

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # Long-polling next calls hold a thread each; the default backlog is plenty.

    def __init__(self, environment: Callable[[], Environment | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.environment = environment
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="lambda-api", daemon=True
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Processes are frozen, reset and SIGKILLed by design: a peer that vanishes mid-call
        # (e.g. a killed extension's pending next) is not an emulator error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)
