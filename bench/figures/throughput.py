"""Throughput: log lines per second one extension process ships, both builds.

During one long invoke (the environment thawed), the bench posts Telemetry API deliveries
(1,000 function records each, what Lambda sends) straight to the extension's listener as
fast as it answers; the extension pushes to a minimal Loki sink in its own process
(``bench/sink.py``: the validating receiver in the bench's process would be the bottleneck).
The rate is lines fed / (time the 95th-percentile line was counted - first delivery answered).
The buffer holds the whole burst, so the rate is what the extension drains; any drop is
reported in the notes.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from .. import cpu_floor, workload
from ..context import EXTENSION_NAME, Build, Context
from ..model import Goal, Measured, Row
from ..session import session
from ..stats import Summary

LINE_SIZE = 200
MIB = 1024 * 1024
SUSTAINED_FRACTION = 0.95
RATIO_GOAL = Goal(text="native ≥ 2x python", compare="native_ratio", threshold=2.0, op=">=")


#: Reads the sink's counts: [(received_at_ns, function lines), ...], one per push.
Counts = Callable[[], list[tuple[int, int]]]


@contextmanager
def _sink(ctx: Context) -> Iterator[tuple[str, Counts]]:
    """A started ``bench.sink`` process: its push URL and a function reading its counts."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink"], cwd=ctx.repo, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[1])

        def counts() -> list[tuple[int, int]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", "/counts")
                return [(int(t), int(n)) for t, n in json.loads(conn.getresponse().read())]
            finally:
                conn.close()

        yield f"http://127.0.0.1:{port}/loki/api/v1/push", counts
    finally:
        proc.kill()
        proc.wait()


def _wait_counted(counts: Counts, n: int, timeout: float) -> list[tuple[int, int]]:
    end = time.monotonic() + timeout
    while True:
        got = counts()
        if sum(c for _, c in got) >= n or time.monotonic() >= end:
            return got
        time.sleep(0.05)


def _direct(ctx: Context, build: Build, lines: int) -> tuple[float, dict[str, int]]:
    with _sink(ctx) as (url, counts), session(ctx, build, env={
        "LOKI_URL": url, "LOKI_MAX_BUFFER_BYTES": str(256 * MIB), "DISPATCH_MIN_BATCH_SIZE": "1000",
    }, timeout_s=300) as s:
        port = s.lam.subscriptions()[EXTENSION_NAME].port
        bodies = cpu_floor.deliveries(workload.lines_like_handler(lines, LINE_SIZE, tag="tput"),
                                      datetime.now(timezone.utc))
        # The function stays busy (thawed) while we feed; this invoke writes no lines of its own.
        inv = threading.Thread(
            target=lambda: s.lam.invoke(workload.event("hold", 0, 0, sleep_ms=240_000), timeout_s=300),
            daemon=True,
        )
        inv.start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        first: float | None = None
        for body in bodies:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            if first is None:
                first = time.time_ns() / 1e9
        conn.close()
        pushes = _wait_counted(counts, lines, timeout=180)
        stored = sum(c for _, c in pushes)
        if stored < lines:
            raise RuntimeError(f"{build.name}: only {stored} of {lines} lines stored")
        # The tail waits for the age-based flush of a remainder below the batch size: the flush
        # interval, not the extension's speed.
        stamps = sorted(t for t, c in pushes for _ in range(c))
        counted = int(len(stamps) * SUSTAINED_FRACTION)
        assert first is not None
        drops = s.drops()
        s.lam.close()  # SHUTDOWN of a busy environment is not what we measure
        inv.join(timeout=10)
        return counted / (stamps[counted - 1] / 1e9 - first), drops


class Throughput:
    name = "throughput"
    title = "Throughput"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        reps = ctx.pick(1, 3)
        lines = ctx.pick(5_000, 100_000)
        m = Measured(params={"reps": reps, "lines": lines, "line_size": LINE_SIZE})
        values: dict[str, list[float]] = {b.name: [] for b in ctx.builds}
        for _ in range(reps):
            for b in ctx.builds:  # alternate, so load drift hits both builds
                t0 = time.monotonic()
                rate, drops = _direct(ctx, b, lines)
                ctx.log(f"   {b.name} {rate:,.0f} lines/s ({time.monotonic() - t0:.1f}s)")
                if any(drops.values()):
                    m.notes.append(f"{b.name}: drops reported while feeding: {drops}")
                values[b.name].append(rate)
        floor_us = cpu_floor.cpu_us_per_line(workload.lines_like_handler(min(lines, 20_000), LINE_SIZE),
                                             reps=ctx.pick(1, 5))
        m.rows.append(Row(key="direct_lines_per_s",
                          label=f"extension capacity ({LINE_SIZE} B lines, {lines:,} per run, fed straight "
                          "to its listener)", unit="lines/s",
                          values={k: Summary.of(v) for k, v in values.items()},
                          baseline=Summary.of([1e6 / u for u in floor_us]),
                          baseline_label="in-process Python floor, one core", goals=(RATIO_GOAL,)))
        m.notes.append("The extension's buffer (256 MiB here) holds the burst; a valid sample reports "
                       "no drop.")
        return m


FIGURE = Throughput()
