"""Managed Instances: the emulator's Lambda Managed Instances mode (concurrent invokes in one
environment that is never frozen, SHUTDOWN-only registration), both builds, default settings.

Rounds of ``CONCURRENCY`` concurrent invokes arrive at a steady rate; right after the last
one the bench counts the lines already in Loki (time-based flushing must have shipped them),
then sends SHUTDOWN and counts again (the drain). Every line's write → stored latency is a
sample.
"""

from __future__ import annotations

import threading
import time

from .. import workload
from ..context import Build, Context
from ..model import BUILDS, Goal, Measured, Row
from ..session import session
from ..stats import Summary

CONCURRENCY = 4
LINES_PER_INVOKE = 20
LINE_SIZE = 200
ROUND_INTERVAL_S = 0.2
#: The extension's default flush interval (LOKI_FLUSH_INTERVAL_MS): the latency bound adds 1 s.
FLUSH_INTERVAL_MS = 500
BEFORE_GOAL = Goal(text="≥ 90%", compare="median", threshold=90.0, op=">=", builds=BUILDS)
AFTER_GOAL = Goal(text="100%", compare="median", threshold=100.0, op=">=", builds=BUILDS)
P99_GOAL = Goal(text=f"p99 ≤ flush interval + 1 s = {FLUSH_INTERVAL_MS + 1000} ms", compare="p99",
                threshold=FLUSH_INTERVAL_MS + 1000.0, builds=BUILDS)


def _run(ctx: Context, build: Build, rounds: int) -> tuple[float, float, list[float], dict[str, int]]:
    """(% stored before SHUTDOWN, % stored after, latencies ms, reported drops)."""
    pace = threading.Event()  # never set: the load generator's metronome
    with session(ctx, build, managed_instances=True, max_concurrency=CONCURRENCY) as s:
        emitted = 0
        start = time.monotonic()
        for r in range(rounds):
            events = [workload.event("mi", LINES_PER_INVOKE, LINE_SIZE, seq=emitted + i * LINES_PER_INVOKE)
                      for i in range(CONCURRENCY)]
            for res in s.lam.invoke_many(events):
                if res.status != "success":
                    raise RuntimeError(f"{build.name}: invoke failed: {res.status} {res.error}")
            emitted += CONCURRENCY * LINES_PER_INVOKE
            if r + 1 < rounds:  # SHUTDOWN follows the last round at once
                pace.wait(max(0.0, start + (r + 1) * ROUND_INTERVAL_S - time.monotonic()))
        before = s.stored()
        s.shutdown()
        after = s.stored()
        return 100.0 * before / emitted, 100.0 * after / emitted, s.latencies_ms("mi"), s.drops()


class ManagedInstances:
    name = "managed_instances"
    title = "Managed Instances"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        rounds = ctx.pick(5, 50)
        m = Measured(params={"rounds": rounds, "concurrency": CONCURRENCY, "interval_s": ROUND_INTERVAL_S})
        before: dict[str, Summary] = {}
        after: dict[str, Summary] = {}
        lat: dict[str, Summary] = {}
        for b in ctx.builds:
            ctx.log(f"   {b.name}")
            pb, pa, latencies, drops = _run(ctx, b, rounds)
            before[b.name], after[b.name] = Summary.of([pb]), Summary.of([pa])
            lat[b.name] = Summary.of(latencies)
            if any(drops.values()):
                m.notes.append(f"{b.name}: drops reported: {drops}")
        m.rows += [
            Row(key="mi_stored_before_shutdown", label="share of lines in Loki before SHUTDOWN", unit="%",
                values=before, goals=(BEFORE_GOAL,)),
            Row(key="mi_stored_after_shutdown", label="share of lines in Loki after SHUTDOWN", unit="%",
                values=after, goals=(AFTER_GOAL,)),
            Row(key="mi_latency_p99", label="delivery latency p99", unit="ms", values=lat, show="p99",
                goals=(P99_GOAL,)),
        ]
        m.notes.append(
            f"{rounds} rounds of {CONCURRENCY} concurrent invokes every {ROUND_INTERVAL_S:g} s, "
            f"{LINES_PER_INVOKE} lines each, max_concurrency {CONCURRENCY}; SHUTDOWN follows the last "
            "round at once, so the lines of its last flush interval are the ones the drain ships."
        )
        return m


FIGURE = ManagedInstances()
