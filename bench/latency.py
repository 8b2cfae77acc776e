"""Figure 5: delivery latency, log line written → stored in Loki, p50/p99, in batch mode
and in ship-before-freeze mode.

Each line carries its write time (``time.time_ns()`` in the handler); the receiver
stamps when it stored each entry (same clock, same machine). Invokes arrive at a
steady rate, the environment frozen between them as in Lambda, so batch-mode
latency includes the wait for the next thaw: it depends on the traffic, and the
rate is part of the result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from . import workload
from .context import Context
from .model import FigureResult, Metric
from .session import FUNCTION_LINES, session
from .stats import Summary

NAME = "latency"
TITLE = "Delivery latency"
LINES_PER_INVOKE = 10
LINE_SIZE = 200
INTERVAL_S = 0.1  # 10 invokes per second

MODES: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("batch", "batch mode (defaults: batch 100, flush interval 1 s)", {}),
    ("ship_before_freeze", "ship-before-freeze mode (Telemetry buffer timeout 25 ms)",
     {"LOKI_SHIP_BEFORE_FREEZE": "true", "LOKI_BUFFER_TIMEOUT_MS": "25"}),
)


def _latencies(ctx: Context, env: Mapping[str, str], invokes: int) -> tuple[list[float], int, int]:
    pace = threading.Event()  # never set: wait() is only the load generator's metronome
    with session(ctx, env=env) as s:
        s.keep_results = False
        start = time.monotonic()
        for i in range(invokes):
            s.emit(LINES_PER_INVOKE, LINE_SIZE, tag="lat")
            pace.wait(max(0.0, start + (i + 1) * INTERVAL_S - time.monotonic()))
        s.shutdown()
        out: list[float] = []
        for e in s.rx.entries(FUNCTION_LINES):
            p = workload.parse_line(e.line)
            if p is not None and p.tag == "lat":
                out.append((e.stored_at_ns - p.emit_ns) / 1e6)
        return out, s.emitted, s.stored()


def run(ctx: Context) -> FigureResult:
    invokes = ctx.pick(10, 300)
    res = FigureResult(
        name=NAME,
        title=TITLE,
        params={"invokes": invokes, "interval_s": INTERVAL_S, "lines_per_invoke": LINES_PER_INVOKE},
    )
    for key, label, env in MODES:
        ctx.log(f"   mode {key}")
        lat, emitted, stored = _latencies(ctx, env, invokes)
        if stored != emitted:
            res.notes.append(f"{key}: {emitted - stored} of {emitted} lines not stored")
        res.metrics.append(
            Metric(key=f"latency_{key}", label=f"{label}, p50 (p99 in its column)", unit="ms",
                   value=Summary.of(lat))
        )
    res.notes.append(
        f"{invokes} invokes at {1 / INTERVAL_S:g}/s, {LINES_PER_INVOKE} lines each; every line's latency "
        "is a sample. Shutdown follows the last invoke at once (a real environment may idle minutes before "
        "SHUTDOWN: batch mode's last lines then wait that long unless a later invoke thaws it)."
    )
    return res
