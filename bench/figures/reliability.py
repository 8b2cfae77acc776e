"""Reliability: lines emitted vs stored vs reported dropped, per fault scenario and build.

Every emitted line must end up stored in Loki or counted in the extension's drop report
(``log entries lost so far: buffer_full=N, ...``, read with the extension's own parser).
Anything else is silent loss, shown as "unaccounted". The figures table also holds the
default mode's SHUTDOWN-at-a-random-point drops, which must be 0.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping

from ..context import Build, Context
from ..model import BUILDS, FaultRow, Goal, Measured, Row
from ..session import Session, session
from ..stats import Summary

LINE_SIZE = 120
INTERVAL_S = 0.1
NO_DROPS = Goal(text="0 dropped", compare="max", threshold=0.0, builds=BUILDS)
#: Flush modes for the random-SHUTDOWN scenario; the first is the default.
MODES: tuple[tuple[str, Mapping[str, str]], ...] = (
    ("default (adaptive)", {}),
    ("end_of_invoke", {"LOKI_FLUSH": "end_of_invoke"}),
    ("batch", {"LOKI_FLUSH": "batch"}),
)

Scenario = Callable[[Context, Build], FaultRow]


def _paced(s: Session, invokes: int, lines: int) -> None:
    """``invokes`` invokes at 10/s (a steady trickle of traffic)."""
    pace = threading.Event()  # never set: the load generator's metronome
    start = time.monotonic()
    for i in range(invokes):
        s.emit(lines, LINE_SIZE)
        pace.wait(max(0.0, start + (i + 1) * INTERVAL_S - time.monotonic()))


def _finish(s: Session, build: Build, scenario: str, note: str = "") -> FaultRow:
    sd = s.shutdown()
    drops = s.drops()
    extra = [f"{k}={v}" for k, v in drops.items() if v]
    if sd.killed:
        extra.append("SIGKILLed at the shutdown deadline")
    if s.lam.records_dropped:
        extra.append(f"Telemetry API dropped {s.lam.records_dropped}")
    return FaultRow(scenario=scenario, build=build.name, emitted=s.emitted, stored=s.stored(),
                    reported_dropped=sum(drops.values()), invokes=s.invokes,
                    note="; ".join(x for x in [note, *extra] if x))


def _burst(ctx: Context, b: Build) -> FaultRow:
    invokes, per = ctx.pick(5, 1000), 100
    with session(ctx, b) as s:
        s.keep_results = False
        for _ in range(invokes):
            s.emit(per, LINE_SIZE)
        return _finish(s, b, f"burst: {invokes * per:,} lines, {invokes:,} back-to-back invokes, "
                       "frozen between")


def _burst_beyond_buffer(ctx: Context, b: Build) -> FaultRow:
    # More than max_buffer_bytes arrives between two chances to ship: the oldest lines are
    # dropped, and every one must be reported.
    invokes, per, size = ctx.pick(3, 20), 100, 8192
    buf = 1024 * 1024
    with session(ctx, b, env={"LOKI_MAX_BUFFER_BYTES": str(buf), "LOKI_FLUSH": "batch"}) as s:
        s.keep_results = False
        for _ in range(invokes):
            s.emit(per, size)
        return _finish(s, b, f"burst beyond the buffer (flush=batch): {invokes * per * size / 2**20:.1f} MiB "
                       f"of 8 KiB lines in {invokes} back-to-back invokes, max_buffer_bytes 1 MiB")


def _outage(ctx: Context, b: Build) -> FaultRow:
    secs = ctx.pick(1, 10)
    with session(ctx, b) as s:
        s.keep_results = False
        s.rx.faults.outage(seconds=secs, status=None)  # connection refused, then back
        _paced(s, int(secs / INTERVAL_S) + ctx.pick(3, 30), 10)
        return _finish(s, b, f"outage: Loki refuses connections for {secs} s while invokes continue at 10/s")


def _rate_limited(ctx: Context, b: Build) -> FaultRow:
    times = ctx.pick(1, 10)
    with session(ctx, b) as s:
        s.keep_results = False
        s.rx.faults.rate_limit(times=times, retry_after=1)
        _paced(s, ctx.pick(10, 100), 20)
        return _finish(s, b, f"429 storm: {times} pushes in a row answered 429 with Retry-After: 1")


def _loki2(ctx: Context, b: Build) -> FaultRow:
    with session(ctx, b, receiver={"structured_metadata": False}) as s:
        s.keep_results = False
        for _ in range(ctx.pick(3, 100)):
            s.emit(50, LINE_SIZE)
        return _finish(s, b, "Loki 2.x: structured metadata rejected with 400")


def _random_shutdowns(ctx: Context, b: Build, mode: str, env: Mapping[str, str], envs: int) -> FaultRow:
    rng = random.Random(20261124)  # the same sequence of environments for every build and mode
    emitted = stored = dropped = invokes = killed = slowed = 0
    for _ in range(envs):
        with session(ctx, b, env=env) as s:
            s.keep_results = False
            if rng.random() < 0.5:
                # A slow Loki: SHUTDOWN then lands while pushes are in flight or queued.
                s.rx.faults.slow(rng.uniform(0.05, 0.5))
                slowed += 1
            for _ in range(rng.randint(1, ctx.pick(3, 30))):
                s.emit(rng.choice([0, 1, 10, 100, 1000]), rng.choice([40, 200, 2000]))
            row = _finish(s, b, "")
            emitted += row.emitted
            stored += row.stored
            dropped += row.reported_dropped
            invokes += row.invokes
            killed += "SIGKILL" in row.note
    return FaultRow(
        scenario=f"SHUTDOWN at a random point, {envs} environments, {mode}",
        build=b.name, emitted=emitted, stored=stored, reported_dropped=dropped, invokes=invokes,
        note=f"Loki slow (50-500 ms per answer) in {slowed}" + (f"; {killed} SIGKILLed" if killed else ""),
    )


SCENARIOS: tuple[Scenario, ...] = (_burst, _burst_beyond_buffer, _outage, _rate_limited, _loki2)


class Reliability:
    name = "reliability"
    title = "Reliability"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        m = Measured()
        envs = ctx.pick(1, 10)
        shutdown_drops: dict[str, Summary] = {}
        for b in ctx.builds:
            for fn in SCENARIOS:
                ctx.log(f"   {fn.__name__.lstrip('_')} {b.name}")
                m.faults.append(fn(ctx, b))
            for i, (mode, env) in enumerate(MODES[:1] if smoke else MODES):
                ctx.log(f"   random shutdowns, {mode}, {b.name}")
                row = _random_shutdowns(ctx, b, mode, env, envs)
                m.faults.append(row)
                if i == 0:
                    shutdown_drops[b.name] = Summary.of([float(row.reported_dropped + row.unaccounted)])
        m.rows.append(Row(key="random_shutdown_dropped",
                          label=f"SHUTDOWN at a random point, slow Loki, default settings: lines dropped "
                          f"({envs} environments)", unit="lines", values=shutdown_drops, goals=(NO_DROPS,)))
        bad = [f"{f.scenario} ({f.build})" for f in m.faults if f.unaccounted != 0]
        if bad:
            m.notes.append("silent loss (or duplicates) in: " + "; ".join(bad))
        return m


FIGURE = Reliability()
