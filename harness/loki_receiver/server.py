"""The HTTP transport: reads requests, asks the fault gate, hands the rest to a handler.

It knows nothing of Loki: the receiver builds it with callables (``Handlers``), so the
transport, the API and the receiver import each other in one direction only
(receiver -> api, server; server -> faults, model).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .._shared.http_body import read_body
from .faults import Decision
from .limits import MAX_BODY_BYTES
from .model import RequestRecord, Response


@dataclass(frozen=True)
class Handlers:
    """What the transport calls, in order: ``gate`` (faults) then ``handle``; ``record`` for
    every answer the transport gives itself (413, faults, internal errors)."""

    #: (method, raw path, lower-case headers, body) -> the answer.
    handle: Callable[[str, str, Mapping[str, str], bytes], Response]
    record: Callable[[RequestRecord], None]
    #: path -> the fault decision and the event that releases a held answer early.
    gate: Callable[[str], tuple[Decision, threading.Event]]
    #: Hold an answer (slow fault) until the delay passes or the event is set.
    hold: Callable[[float, threading.Event], None]

# The client port of the request the current handler thread is serving, so records
# made deeper down (in the receiver) can carry it without threading it through every call.
_current = threading.local()


def current_client_port() -> int:
    port: int = getattr(_current, "port", 0)
    return port


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that calls ``Handlers`` and can cut every open connection."""

    daemon_threads = True
    # Never wait for handler threads on close: an outage must cut in while a slow answer is held.
    block_on_close = False
    allow_reuse_address = True
    # Many extension instances may connect at once in e2e tests and bench.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handlers: Handlers) -> None:
        self.handlers = handlers
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanishes mid-request (an extension SIGKILLed at the shutdown deadline,
        # a cut keep-alive socket) is normal here, as for Loki: no traceback for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        """Close every open connection (an outage must not be served through keep-alive sockets)."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    server: Server
    # HTTP/1.1 so clients can keep connections alive, as with a real Loki.
    protocol_version = "HTTP/1.1"
    server_version = "loki-receiver"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: tests and the demo print what they need from .requests.
        return

    # --- plumbing ------------------------------------------------------------

    def _headers_lower(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _read_body(self) -> bytes | None:
        """The request body, or None (connection to be closed) when over MAX_BODY_BYTES."""
        body = read_body(self.rfile, self.headers, MAX_BODY_BYTES)
        if body is None:
            self.close_connection = True
        return body

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
              headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if status != 204 and body:
            self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json; charset=UTF-8")

    def _record(self, status: int, *, received: int = 0, accepted: int = 0, body_bytes: int = 0,
                error: str = "", answered_by: str = "loki") -> None:
        self.server.handlers.record(RequestRecord(
            method=self.command,
            path=urlsplit(self.path).path,
            status=status,
            headers=self._headers_lower(),
            entries_received=received,
            entries_accepted=accepted,
            body_bytes=body_bytes,
            error=error,
            answered_by=answered_by,
            at_ns=time.time_ns(),
        ))

    # --- dispatch --------------------------------------------------------------

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        _current.port = self.client_address[1]
        handlers = self.server.handlers
        path = urlsplit(self.path).path
        body = self._read_body() if self.command in ("POST", "PUT") else b""
        if body is None:
            msg = f"request body too large: limit {MAX_BODY_BYTES} bytes\n"
            self._record(413, error=msg.strip())
            self._send(413, msg.encode())
            return
        decision, wake = handlers.gate(path)
        if decision.delay_s:
            handlers.hold(decision.delay_s, wake)
        if decision.action == "disconnect":
            self._record(0, body_bytes=len(body), answered_by=decision.fault, error="connection closed")
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if decision.action == "status":
            self._record(decision.status, body_bytes=len(body), error=decision.body.strip(),
                         answered_by=decision.fault)
            self._send(decision.status, decision.body.encode(), headers=decision.headers)
            return
        try:
            answer = handlers.handle(self.command, self.path, self._headers_lower(), body)
        except Exception as exc:  # a receiver bug must look like a Loki 500, not a dropped connection
            traceback.print_exc(file=sys.stderr)
            msg = f"internal error in the test receiver: {exc!r}"
            self._record(500, body_bytes=len(body), error=msg)
            self._send(500, (msg + "\n").encode())
            return
        self._send(*answer)

