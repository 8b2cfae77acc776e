"""Figure 8: fault figures: lines emitted vs stored vs reported dropped, per scenario.

Every emitted line must end up stored in Loki or counted in the extension's drop
report (its stderr line "... lost ...: buffer_full=N, rejected_by_loki=N,
shutdown_deadline=N, lambda_logs_dropped=N", also pushed to Loki). Anything else
is silent loss, shown as "unaccounted".
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .context import Context
from .model import FaultRow, FigureResult
from .session import Session, session

NAME = "faults"
TITLE = "Fault figures"
LINE_SIZE = 120
INTERVAL_S = 0.1


def _paced(s: Session, invokes: int, lines: int, during: Callable[[int], None] | None = None) -> None:
    """``invokes`` invokes at 10/s (a steady trickle of traffic), ``during(i)`` before each."""
    pace = threading.Event()  # never set: the metronome of the load generator
    start = time.monotonic()
    for i in range(invokes):
        if during is not None:
            during(i)
        s.emit(lines, LINE_SIZE)
        pace.wait(max(0.0, start + (i + 1) * INTERVAL_S - time.monotonic()))


def _finish(s: Session, scenario: str, note: str = "") -> FaultRow:
    sd = s.shutdown()
    drops = s.drops()
    extra = [f"{k}={v}" for k, v in drops.items() if v]
    if sd.killed:
        extra.append("SIGKILLed at the shutdown deadline")
    if s.lam.records_dropped:
        extra.append(f"Telemetry API dropped {s.lam.records_dropped}")
    return FaultRow(
        scenario=scenario,
        emitted=s.emitted,
        stored=s.stored(),
        reported_dropped=sum(drops.values()),
        invokes=s.invokes,
        note="; ".join(x for x in [note, *extra] if x),
    )


def _burst(ctx: Context) -> FaultRow:
    invokes, per = ctx.pick(20, 1000), 100
    with session(ctx) as s:
        s.keep_results = False
        for _ in range(invokes):
            s.emit(per, LINE_SIZE)
        return _finish(s, f"burst: {invokes * per:,} lines, {invokes:,} back-to-back invokes, frozen between")


def _burst_beyond_buffer(ctx: Context) -> FaultRow:
    # Back-to-back invokes give a batch-mode extension only milliseconds of thawed time: a
    # burst larger than max_buffer_bytes must drop its oldest lines, and report every one.
    invokes, per, size = ctx.pick(5, 20), 100, 8192
    buf = ctx.pick(1, 4) * 1024 * 1024
    with session(ctx, env={"LOKI_MAX_BUFFER_BYTES": str(buf)}) as s:
        s.keep_results = False
        for _ in range(invokes):
            s.emit(per, size)
        return _finish(s, f"burst beyond the buffer: {invokes * per * size / 2**20:.1f} MiB of 8 KiB lines "
                       f"in {invokes} back-to-back invokes, max_buffer_bytes {buf // 2**20} MiB")


def _outage(ctx: Context) -> FaultRow:
    secs = ctx.pick(2, 30)
    after = ctx.pick(8, 50)
    with session(ctx) as s:
        s.keep_results = False
        s.rx.faults.outage(seconds=secs, status=None)  # connection refused, then back
        _paced(s, int(secs / INTERVAL_S) + after, 10)
        return _finish(s, f"outage: Loki refuses connections for {secs} s while invokes continue at 10/s")


def _rate_limited(ctx: Context) -> FaultRow:
    # Retry-After: 1 makes each 429 cost a second; traffic goes on well past the storm so the
    # figure shows recovery (a storm still raging at SHUTDOWN loses what cannot wait: reported).
    times = ctx.pick(2, 10)
    with session(ctx) as s:
        s.keep_results = False
        s.rx.faults.rate_limit(times=times, retry_after=1)
        _paced(s, ctx.pick(25, 200), 20)
        return _finish(s, f"429 storm: {times} pushes in a row answered 429 with Retry-After: 1")


def _loki2(ctx: Context) -> FaultRow:
    receiver: Mapping[str, Any] = {"structured_metadata": False}
    with session(ctx, receiver=receiver) as s:
        s.keep_results = False
        for _ in range(ctx.pick(10, 100)):
            s.emit(50, LINE_SIZE)
        return _finish(s, "Loki 2.x: structured metadata rejected with 400")


def _random_shutdowns(ctx: Context) -> list[FaultRow]:
    rng = random.Random(20261124)
    envs = ctx.pick(2, 20)
    rows: list[FaultRow] = []
    for mode, env in (("batch", {}), ("ship-before-freeze", {"LOKI_SHIP_BEFORE_FREEZE": "true"})):
        emitted = stored = dropped = invokes = killed = 0
        slowed = 0
        for _ in range(envs):
            with session(ctx, env=env) as s:
                s.keep_results = False
                if rng.random() < 0.5:
                    # A slow Loki: SHUTDOWN then lands while pushes are in flight or queued.
                    s.rx.faults.slow(rng.uniform(0.05, 0.5))
                    slowed += 1
                for _ in range(rng.randint(1, 30)):
                    s.emit(rng.choice([0, 1, 10, 100, 1000]), rng.choice([40, 200, 2000]))
                row = _finish(s, "")
                emitted += row.emitted
                stored += row.stored
                dropped += row.reported_dropped
                invokes += row.invokes
                killed += "SIGKILL" in row.note
        rows.append(
            FaultRow(
                scenario=f"SHUTDOWN at a random point, {envs} environments, {mode} mode",
                emitted=emitted,
                stored=stored,
                reported_dropped=dropped,
                invokes=invokes,
                note=f"Loki slow (50-500 ms per answer) in {slowed}"
                + (f"; {killed} SIGKILLed at the deadline" if killed else ""),
            )
        )
    return rows


def run(ctx: Context) -> FigureResult:
    res = FigureResult(name=NAME, title=TITLE)
    for fn in (_burst, _burst_beyond_buffer, _outage, _rate_limited, _loki2):
        ctx.log(f"   scenario {fn.__name__.lstrip('_')}")
        res.faults.append(fn(ctx))
    ctx.log("   scenario random shutdowns")
    res.faults.extend(_random_shutdowns(ctx))
    bad = [f.scenario for f in res.faults if f.unaccounted != 0]
    if bad:
        res.notes.append("silent loss (or duplicates) in: " + "; ".join(bad))
    return res
