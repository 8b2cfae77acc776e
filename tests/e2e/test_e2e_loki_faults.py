"""Loki misbehaving while the function runs: a 30 s outage, 429 storms with
Retry-After, a slow Loki. Nothing is lost or duplicated, and the function never waits
for Loki (batch mode's invokes stay within budget throughout)."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_clean_shutdown,
    assert_same_lines,
    batch_budget,
    burst_lines,
    function_entries,
    invoke_burst,
    loki_env,
    reported_drop_counters,
    reported_drops,
)

OUTAGE_S = 30.0
#: Traffic pacing during the outage: a steady trickle of invokes like a real workload.
#: This is load shaping, not synchronisation; nothing waits on it for correctness.
INVOKE_INTERVAL_S = 0.25


def test_30s_outage_during_traffic_loses_nothing(make_emulator: MakeEmulator, receiver: Any) -> None:
    name = "e2e-outage"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "50"}), function_name=name
    )
    budget = batch_budget()
    expected: list[str] = []

    def invoke(prefix: str, count: int = 40) -> None:
        expected.extend(invoke_burst(emulator, budget, prefix, count, 60))

    # GIVEN traffic already flowing
    for i in range(5):
        invoke(f"pre{i}")
    # WHEN Loki goes away for 30 s while invokes keep coming: first its gateway answers
    # 503, then the port refuses connections altogether.
    receiver.faults.outage(seconds=OUTAGE_S / 2, status=503)
    half_time = time.monotonic() + OUTAGE_S / 2
    outage_ends = time.monotonic() + OUTAGE_S
    refusing = False
    pacer = threading.Event()
    during = 0
    while time.monotonic() < outage_ends:
        if not refusing and time.monotonic() >= half_time:
            receiver.faults.outage(seconds=outage_ends - time.monotonic(), status=None)
            refusing = True
        invoke(f"out{during:04d}")
        during += 1
        pacer.wait(INVOKE_INTERVAL_S)
    receiver.faults.clear()
    # ... and comes back
    for i in range(5):
        invoke(f"post{i}")
    shutdown = emulator.shutdown()

    # THEN every line arrives exactly once, nothing was dropped, and no invoke waited on Loki
    assert during >= 50, "not enough traffic during the outage to prove anything"
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, "outage")
    assert reported_drops(emulator) == 0
    assert_clean_shutdown(shutdown)
    budget.check()
    # Retries happened, and were spaced out (backoff), not a hot loop.
    failed = [r for r in receiver.push_requests() if r.status >= 500]
    assert failed, "the outage produced no failed pushes: was it really pushing during it?"
    assert len(failed) < 2_000, f"{len(failed)} failed pushes in {OUTAGE_S}s: no backoff"


def _assert_retry_after_honoured(receiver: Any, retry_after_s: float) -> None:
    """After a 429 with Retry-After, the next push comes no sooner than that (small
    tolerance for clock granularity); a client ignoring it retries at once."""
    pushes = receiver.push_requests()
    for r, nxt in itertools.pairwise(pushes):
        if r.status == 429:
            gap_s = (nxt.at_ns - r.at_ns) / 1e9
            assert gap_s >= retry_after_s - 0.1, f"pushed {gap_s:.3f}s after a 429 with Retry-After"


def test_429_storm_honours_retry_after_without_loss(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN Loki rate-limits the next 4 pushes with Retry-After: 1 while traffic goes on
    # for longer than the storm (time passes across freezes, so waits elapse in between)
    name = "e2e-429"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "20"}), function_name=name
    )
    budget = batch_budget()
    receiver.faults.rate_limit(times=4, retry_after=1)
    pacer = threading.Event()
    expected: list[str] = []
    for i in range(24):
        expected += invoke_burst(emulator, budget, f"rl{i:02d}", 30, 50)
        pacer.wait(INVOKE_INTERVAL_S)  # load shaping, as in the outage test
    shutdown = emulator.shutdown()

    # THEN everything arrives once, nothing is dropped, the function never waited
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, "429 storm")
    assert reported_drops(emulator) == 0
    assert_clean_shutdown(shutdown)
    budget.check()
    assert sum(r.status == 429 for r in receiver.push_requests()) == 4
    _assert_retry_after_honoured(receiver, 1.0)


def test_429_until_shutdown_reports_exactly_what_it_dropped(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    # GIVEN Loki answers every push 429 (Retry-After: 1) for the environment's whole life
    name = "e2e-429-forever"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "20"}), function_name=name
    )
    budget = batch_budget()
    receiver.faults.rate_limit(times=None, retry_after=1)
    expected: list[str] = []
    for i in range(12):
        expected += invoke_burst(emulator, budget, f"rf{i:02d}", 30, 50)
    shutdown = emulator.shutdown()

    # THEN it gives up inside the SHUTDOWN deadline and reports every line it lost
    assert_clean_shutdown(shutdown)
    stored = [e.line for e in function_entries(receiver, name)]
    assert stored == []
    assert reported_drops(emulator) == len(expected)
    budget.check()
    # Retry-After is honoured across the hand-over from the background sender to the drain.
    _assert_retry_after_honoured(receiver, 1.0)


def test_slow_loki_does_not_slow_the_function(make_emulator: MakeEmulator, receiver: Any) -> None:
    name = "e2e-slow"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "10"}), function_name=name
    )
    receiver.faults.slow(0.5)
    budget = batch_budget()
    expected: list[str] = []
    for i in range(20):
        expected += invoke_burst(emulator, budget, f"sl{i:02d}", 25, 50)
    receiver.faults.clear()
    shutdown = emulator.shutdown()

    budget.check()
    assert_clean_shutdown(shutdown)
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, "slow Loki")
    assert reported_drops(emulator) == 0


def test_full_buffer_drops_oldest_and_reports_exact_count(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN a small memory bound (64 KiB) and Loki down while the function writes far more
    name = "e2e-buffer-full"
    emulator = make_emulator(
        loki_env(
            receiver,
            flush="batch",
            **{
                envvars.LOKI_MAX_BUFFER_BYTES: str(envvars.SETTINGS[envvars.LOKI_MAX_BUFFER_BYTES].minimum),
                envvars.DISPATCH_MIN_BATCH_SIZE: "50",
            },
        ),
        function_name=name,
    )
    receiver.faults.outage(status=503)
    budget = batch_budget()
    expected: list[str] = []
    for i in range(10):
        expected += invoke_burst(emulator, budget, f"bf{i:02d}", 200, 100)
    # WHEN Loki comes back before SHUTDOWN
    receiver.faults.clear()
    shutdown = emulator.shutdown()

    # THEN the newest lines are stored, and every other line is counted as dropped
    assert_clean_shutdown(shutdown)
    budget.check()
    stored = sorted(e.line for e in function_entries(receiver, name))
    assert 0 < len(stored) < len(expected), "the bound did not bite or nothing survived"
    assert len(set(stored)) == len(stored) and set(stored) <= set(expected)
    counters = reported_drop_counters(emulator)
    assert counters.get("buffer_full", 0) == len(expected) - len(stored), counters
    assert reported_drops(emulator) == len(expected) - len(stored), counters
    # ... and the loss is visible in Loki itself, not only on stderr.
    reports = [e.line for e in receiver.entries(f'{{function="{name}", type="extension"}}')]
    assert any(f"buffer_full={len(expected) - len(stored)}" in r for r in reports), reports
    # Drop-oldest: the newest lines survive (a batch already taken for a push when the
    # buffer filled may survive too, but it must not crowd out newer lines).
    assert set(burst_lines("bf09", 200, 100)) <= set(stored), "the newest lines were dropped"
