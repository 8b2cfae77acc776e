"""The in-process CPU floor for the CPU-per-line and throughput figures: the least
work that turns Telemetry API deliveries into Loki pushes: parse the delivery JSON, build the push body
(streams/values, ns timestamps), serialise it and gzip it. No HTTP, no threads,
no buffering, no metadata: what any shipper must spend at minimum per line.
"""

from __future__ import annotations

import json
import time
import zlib
from datetime import datetime, timedelta, timezone

#: Same compression level as the extension, else the floor would compare levels, not code.
try:
    from loki_telemetry_extension.batch import GZIP_LEVEL
except ImportError:  # pragma: no cover - the extension not importable: its documented level
    GZIP_LEVEL = 1

DELIVERY_MAX_ITEMS = 1000
DELIVERY_MAX_BYTES = 262_144
PUSH_MAX_BYTES = 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def deliveries(lines: list[str], start: datetime) -> list[bytes]:
    """Telemetry API POST bodies (JSON arrays of function records), batched like the
    default subscription (maxItems 1000, maxBytes 256 KiB)."""
    out: list[bytes] = []
    batch: list[dict[str, object]] = []
    size = 0
    for i, line in enumerate(lines):
        t = (start + timedelta(microseconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        batch.append({"time": t, "type": "function", "record": line + "\n"})
        size += len(line) + 64
        if len(batch) >= DELIVERY_MAX_ITEMS or size >= DELIVERY_MAX_BYTES:
            out.append(json.dumps(batch).encode())
            batch, size = [], 0
    if batch:
        out.append(json.dumps(batch).encode())
    return out


def _ns(iso: str) -> int:
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _push(labels: dict[str, str], values: list[list[str]]) -> bytes:
    body = json.dumps({"streams": [{"stream": labels, "values": values}]}, separators=(",", ":")).encode()
    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return c.compress(body) + c.flush()


def process(bodies: list[bytes], function_name: str) -> int:
    """Turn deliveries into gzip'd push bodies; returns the compressed size (nothing is optimised away)."""
    labels = {"source": "lambda", "function": function_name}
    total = 0
    values: list[list[str]] = []
    size = 0
    for body in bodies:
        for item in json.loads(body):
            line = item["record"].rstrip("\n")
            values.append([str(_ns(item["time"])), line])
            size += len(line) + 32
            if size >= PUSH_MAX_BYTES:
                total += len(_push(labels, values))
                values, size = [], 0
        if values:  # one push per delivery at most: what a prompt shipper does
            total += len(_push(labels, values))
            values, size = [], 0
    return total


def cpu_us_per_line(lines: list[str], reps: int) -> list[float]:
    """CPU microseconds per line (process time) of ``process`` over ``lines``, ``reps`` samples."""
    bodies = deliveries(lines, datetime.now(timezone.utc))
    process(bodies, "bench-fn")  # warm caches
    out = []
    for _ in range(reps):
        t0 = time.process_time()
        process(bodies, "bench-fn")
        out.append((time.process_time() - t0) * 1e6 / len(lines))
    return out
