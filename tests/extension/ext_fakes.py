"""Small in-test stand-ins (stdlib only): a Loki push endpoint and the Lambda
Extensions/Telemetry APIs. Unit level only; the real harness is used in tests/e2e."""

from __future__ import annotations

import gzip
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Recorded:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path = path
        self.headers = headers
        self.raw = body
        data = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
        self.json: Any = json.loads(data) if data else None

    def entries(self) -> list[tuple[dict[str, str], str, str, dict[str, str] | None]]:
        out = []
        for s in (self.json or {}).get("streams", []):
            for v in s["values"]:
                out.append((s["stream"], v[0], v[1], v[2] if len(v) > 2 else None))
        return out


class FakeLoki:
    """Records pushes; ``script`` answers (status, headers, body) are used first, then 204."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[
            tuple[int, dict[str, str], bytes] | Callable[[Recorded], tuple[int, dict[str, str], bytes]]
        ] = []
        self.cond = threading.Condition()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.cond:
                    answer: Any = outer.script.pop(0) if outer.script else (204, {}, b"")
                    if callable(answer):
                        answer = answer(rec)
                    outer.requests.append(rec)
                    outer.cond.notify_all()
                status, headers, rbody = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rbody)))
                self.end_headers()
                self.wfile.write(rbody)

        self.server = _Server(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/loki/api/v1/push"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def stored(self) -> list[tuple[dict[str, str], str, str, dict[str, str] | None]]:
        """Entries of requests answered 2xx."""
        with self.cond:
            return [e for r in self.requests for e in r.entries() if getattr(r, "ok", True)]

    def wait_for(self, pred: Callable[[FakeLoki], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeLambda:
    """Extensions API + Telemetry API subscribe; the test feeds events and deliveries."""

    def __init__(self, *, subscribe_status: int = 200) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.cond = threading.Condition()
        self.next_calls = 0
        self.served: list[str] = []
        self.registered: dict[str, str] = {}
        self.subscription: dict[str, Any] | None = None
        self.errors: list[tuple[str, str]] = []
        self.subscribe_status = subscribe_status
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_POST(self) -> None:
                body = self._body()
                if self.path.endswith("/extension/register"):
                    with outer.cond:
                        outer.registered = {
                            "name": self.headers.get("Lambda-Extension-Name", ""),
                            "body": body.decode(),
                        }
                        outer.cond.notify_all()
                    self._reply(
                        200,
                        b'{"functionName":"f","functionVersion":"$LATEST","handler":"h"}',
                        {"Lambda-Extension-Identifier": "ext-id-1"},
                    )
                elif self.path.endswith("/error"):
                    outer.errors.append(
                        (self.path, self.headers.get("Lambda-Extension-Function-Error-Type", ""))
                    )
                    self._reply(202, b"{}")
                else:
                    self._reply(404)

            def do_PUT(self) -> None:
                body = self._body()
                with outer.cond:
                    outer.subscription = json.loads(body)
                    outer.subscription["_id"] = self.headers.get("Lambda-Extension-Identifier")
                    outer.cond.notify_all()
                self._reply(outer.subscribe_status, b'"OK"')

            def do_GET(self) -> None:
                if not self.path.endswith("/event/next"):
                    self._reply(404)
                    return
                with outer.cond:
                    outer.next_calls += 1
                    outer.cond.notify_all()
                event = outer.events.get()
                self._reply(200, json.dumps(event).encode(), {"Content-Type": "application/json"})
                with outer.cond:
                    outer.served.append(event.get("eventType", ""))
                    outer.cond.notify_all()

        self.server = _Server(("127.0.0.1", 0), H)
        self.runtime_api = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def wait(self, pred: Callable[[FakeLambda], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self), timeout)

    def listener_port(self) -> int:
        assert self.subscription is not None
        return int(self.subscription["destination"]["URI"].rsplit(":", 1)[1])

    def deliver(self, items: list[dict[str, Any]], *, until_queued: bool = False) -> int:
        """POST one delivery to the listener. The listener answers 200 before it queues the
        records; with ``until_queued`` the request says ``Connection: close`` and this returns
        only once the listener has closed the connection, which both builds do after queuing."""
        body = json.dumps(items).encode()
        if until_queued:
            head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            with socket.create_connection(("127.0.0.1", self.listener_port()), timeout=5) as sock:
                sock.sendall(head + body)
                answer = b""
                while chunk := sock.recv(4096):  # to the listener's close
                    answer += chunk
            return int(answer.split(b" ", 2)[1])
        conn = http.client.HTTPConnection("127.0.0.1", self.listener_port(), timeout=5)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            return conn.getresponse().status
        finally:
            conn.close()

    def invoke(self, request_id: str, *, timeout_s: float = 3.0) -> None:
        self.events.put(
            {
                "eventType": "INVOKE",
                "requestId": request_id,
                "deadlineMs": int((time.time() + timeout_s) * 1000),
                "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            }
        )

    def shutdown(self, *, deadline_s: float = 2.0) -> None:
        self.events.put(
            {
                "eventType": "SHUTDOWN",
                "shutdownReason": "spindown",
                "deadlineMs": int((time.time() + deadline_s) * 1000),
            }
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def fn(line: str, ts: float | None = None) -> dict[str, Any]:
    return {"time": iso(time.time() if ts is None else ts), "type": "function", "record": line}


def platform(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"time": iso(time.time()), "type": f"platform.{kind}", "record": record}
