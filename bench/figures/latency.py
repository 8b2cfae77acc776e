"""Delivery latency with the default settings: log line written → stored in Loki, both builds,
for sparse traffic (each invoke followed by a freeze of ``FREEZE_S``) and dense traffic (10
invokes per second, frozen between them as in Lambda).

Each line carries its write time (``time.time_ns()`` in the handler); the receiver stamps when
it stored each entry (same clock, same machine). Sparse traffic also counts, after every
invoke, the lines not yet in Loki when the freeze began and when it ended: with the adaptive
default none may wait for the next invoke, the first (cold-start) invoke included.
"""

from __future__ import annotations

import threading
import time

from ..context import Build, Context
from ..model import BUILDS, Goal, Measured, Row
from ..session import session
from ..stats import Summary

LINES_PER_INVOKE = 25
LINE_SIZE = 200
FREEZE_S = 1.0
DENSE_INTERVAL_S = 0.1
P99_GOAL = Goal(text="p99 ≤ 1 s", compare="p99", threshold=1000.0, builds=BUILDS)
NONE_MISSING = Goal(text="0 on every invoke", compare="max", threshold=0.0, builds=BUILDS)


def _sparse(
    ctx: Context, build: Build, invokes: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(latencies ms, missing at freeze start, missing at freeze end, post-runtime ms) per invoke."""
    pace = threading.Event()  # never set: the load generator's metronome, not synchronisation
    at_start: list[float] = []
    at_end: list[float] = []
    with session(ctx, build) as s:
        for _ in range(invokes):
            s.emit(LINES_PER_INVOKE, LINE_SIZE, tag="sparse")
            at_start.append(float(s.emitted - s.stored()))  # the emulator froze it when invoke returned
            pace.wait(FREEZE_S)
            at_end.append(float(s.emitted - s.stored()))
        post = [r.post_runtime_ms for r in s.results]
        s.shutdown()
        return s.latencies_ms("sparse"), at_start, at_end, post


def _dense(ctx: Context, build: Build, invokes: int) -> tuple[list[float], int, int]:
    pace = threading.Event()
    with session(ctx, build) as s:
        s.keep_results = False
        start = time.monotonic()
        for i in range(invokes):
            s.emit(LINES_PER_INVOKE, LINE_SIZE, tag="dense")
            pace.wait(max(0.0, start + (i + 1) * DENSE_INTERVAL_S - time.monotonic()))
        s.shutdown()
        return s.latencies_ms("dense"), s.emitted, s.stored()


class Latency:
    name = "latency"
    title = "Delivery latency (default settings)"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        sparse_n = ctx.pick(2, 10)
        dense_n = ctx.pick(5, 200)
        m = Measured(params={"sparse_invokes": sparse_n, "freeze_s": FREEZE_S, "dense_invokes": dense_n,
                             "dense_interval_s": DENSE_INTERVAL_S, "lines_per_invoke": LINES_PER_INVOKE})
        lat_s: dict[str, Summary] = {}
        miss0: dict[str, Summary] = {}
        miss1: dict[str, Summary] = {}
        post: dict[str, Summary] = {}
        lat_d: dict[str, Summary] = {}
        for b in ctx.builds:
            ctx.log(f"   sparse {b.name}")
            lat, start, end, pr = _sparse(ctx, b, sparse_n)
            lat_s[b.name], miss0[b.name], miss1[b.name], post[b.name] = (
                Summary.of(lat), Summary.of(start), Summary.of(end), Summary.of(pr))
            ctx.log(f"   dense {b.name}")
            lat, emitted, stored = _dense(ctx, b, dense_n)
            if stored != emitted:
                m.notes.append(f"dense, {b.name}: {emitted - stored} of {emitted} lines not stored")
            lat_d[b.name] = Summary.of(lat)
        m.rows += [
            Row(key="sparse_missing_after_freeze",
                label=f"sparse: lines of an invoke missing from Loki {FREEZE_S:g} s into its freeze "
                f"(max over {sparse_n} invokes, cold start included; {LINES_PER_INVOKE} per invoke)",
                unit="lines", values=miss1, show="max", goals=(NONE_MISSING,)),
            Row(key="sparse_missing_at_freeze",
                label="sparse: lines missing when the freeze began (max)", unit="lines", values=miss0,
                show="max"),
            Row(key="sparse_post_runtime", label="sparse: post-runtime time (the wait for shipping), p50",
                unit="ms", values=post, show="p50"),
            Row(key="latency_sparse_p99", label="sparse: delivery latency p99", unit="ms", values=lat_s,
                show="p99", goals=(P99_GOAL,)),
            Row(key="latency_dense_p99",
                label=f"dense ({1 / DENSE_INTERVAL_S:g} invokes/s): delivery latency p99", unit="ms",
                values=lat_d, show="p99", goals=(P99_GOAL,)),
            Row(key="latency_dense_p50", label="dense: delivery latency p50", unit="ms", values=lat_d,
                show="p50"),
        ]
        m.notes.append(
            "Default settings (flush=adaptive). Sparse: each invoke writes its lines and returns, the "
            f"emulator freezes the environment, and the bench counts what is stored then and {FREEZE_S:g} s "
            "later. Dense: every line's latency is a sample; SHUTDOWN follows the last invoke at once."
        )
        return m


FIGURE = Latency()
