"""``python -m bench.sink``: a minimal Loki push endpoint in its own process, for the throughput
figure. It answers each push 204, then gunzips, parses and counts its function lines, and
serves what it counted at ``GET /counts`` as JSON ``[[received_at_ns, lines], ...]``.

Why not the Loki receiver: it validates every entry like real Loki, in Python, in the bench's own
process, about 7 µs a line together with the feeder: that capped any extension at about 135k
lines/s, so the figure measured the harness. Here the sink has its own process and does only
what counting needs (C zlib and C json: about 1 µs a line). What Loki accepts is tested
elsewhere (the receiver, the differential test against real Loki, the e2e suite).

Prints ``port <n>`` on stdout once it listens on 127.0.0.1; runs until stdin closes.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_counts: list[tuple[int, int]] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = time.time_ns()
        # Answer first: the extension has one push in flight at a time, so the sink's own
        # decoding would otherwise be counted as the extension's time.
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        doc = json.loads(body)
        # Function lines only: the function stream is the one without a "type" label.
        lines = sum(len(s["values"]) for s in doc.get("streams", []) if "type" not in s.get("stream", {}))
        with _lock:
            _counts.append((received, lines))

    def do_GET(self) -> None:
        with _lock:
            data = json.dumps(_counts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a line per push would cost the sink more than the push."""


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_address[1]}", flush=True)
    sys.stdin.read()  # the bench closes stdin (or exits) to stop the sink
    server.shutdown()


if __name__ == "__main__":
    main()
