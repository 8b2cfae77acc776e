"""A tiny stdlib-only test extension that records everything it sees.

Installed by the tests into a temporary layer as ``extensions/<name>``; its behaviour
comes from ``$REC_DIR/<name>.config.json`` and it appends JSON lines to
``$REC_DIR/<name>.jsonl``:
``{"kind": "register"|"subscribe"|"probe"|"event"|"batch"|"env", "t": monotonic, ...}``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

NAME = Path(sys.argv[0]).name
OUT_DIR = Path(os.environ["REC_DIR"])
CONFIG: dict[str, Any] = json.loads((OUT_DIR / f"{NAME}.config.json").read_text())
API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}"
_lock = threading.Lock()
_out = (OUT_DIR / f"{NAME}.jsonl").open("a", encoding="utf-8")
_posts = 0
_runtime_done: set[str] = set()
_cond = threading.Condition()


def record(kind: str, **fields: Any) -> None:
    with _lock:
        _out.write(json.dumps({"kind": kind, "t": time.monotonic(), **fields}) + "\n")
        _out.flush()


def call(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(API + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), json.loads(raw) if raw else None


class Listener(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        global _posts
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with _cond:
            _posts += 1
            n = _posts
        if CONFIG.get("listener_delay_s"):
            time.sleep(CONFIG["listener_delay_s"])  # simulates a slow consumer
        fail = n <= CONFIG.get("listener_fail_first", 0)
        if not fail:
            items = json.loads(body)
            record("batch", path=self.path, items=items, bytes=len(body))
            with _cond:
                for it in items:
                    if it["type"] == "platform.runtimeDone":
                        _runtime_done.add(it["record"]["requestId"])
                _cond.notify_all()
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if CONFIG.get("close_idle"):
            # Drops the connection after answering, without saying so in a header, like a
            # server closing an idle keep-alive connection.
            self.close_connection = True


def main() -> None:
    record("env", env=dict(os.environ), argv=sys.argv, python=sys.version_info[:2])
    if CONFIG.get("say"):
        print(CONFIG["say"], file=sys.stderr, flush=True)
    status, headers, body = call(
        "POST",
        "/2020-01-01/extension/register",
        {"events": CONFIG.get("events", ["INVOKE", "SHUTDOWN"])},
        {"Lambda-Extension-Name": CONFIG.get("register_as", NAME)},
    )
    ext_id = headers.get("Lambda-Extension-Identifier", "")
    record("register", status=status, body=body, id=ext_id)
    if status != 200:
        sys.exit(1)
    for probe in CONFIG.get("probes", []):
        st, _, b = call("PUT", "/2022-07-01/telemetry", probe, {"Lambda-Extension-Identifier": ext_id})
        record("probe", request=probe, status=st, body=b)
    if CONFIG.get("init_error"):
        call(
            "POST",
            "/2020-01-01/extension/init/error",
            {},
            {"Lambda-Extension-Identifier": ext_id, "Lambda-Extension-Function-Error-Type": "Extension.Test"},
        )
        sys.exit(1)
    sub = CONFIG.get("subscribe")
    if sub is not None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Listener)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        sub = {
            **sub,
            "destination": {
                "protocol": "HTTP",
                "URI": f"http://sandbox.localdomain:{server.server_port}/telemetry",
            },
        }
        st, _, b = call("PUT", "/2022-07-01/telemetry", sub, {"Lambda-Extension-Identifier": ext_id})
        record("subscribe", status=st, body=b)
    if CONFIG.get("never_ready"):
        threading.Event().wait()  # registered, but never calls next: init must time out
    invokes = 0
    while True:
        st, _, evt = call(
            "GET", "/2020-01-01/extension/event/next", None, {"Lambda-Extension-Identifier": ext_id}
        )
        record("event", event=evt)
        if evt["eventType"] == "SHUTDOWN":
            if CONFIG.get("on_shutdown") == "hang":
                threading.Event().wait()  # a stuck extension: only SIGKILL ends it
            sys.exit(0)
        invokes += 1
        if invokes == CONFIG.get("crash_on_invoke"):
            os._exit(3)
        if CONFIG.get("wait_runtime_done"):
            deadline = evt["deadlineMs"] / 1000 - 0.2
            request_id = evt["requestId"]
            with _cond:
                _cond.wait_for(lambda: request_id in _runtime_done, max(0.0, deadline - time.time()))  # noqa: B023
        if CONFIG.get("work_ms") and invokes >= CONFIG.get("work_from_invoke", 1):
            end = time.monotonic() + CONFIG["work_ms"] / 1000
            while time.monotonic() < end:  # busy work the extension does before next
                pass


if __name__ == "__main__":
    main()
