"""SHUTDOWN at random points: whatever is queued when SHUTDOWN arrives is either
stored in Loki or reported as dropped, and the extension exits by itself before
Lambda's 2,000 ms deadline (never SIGKILLed, never an Extension.Crash)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_clean_shutdown,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    burst_lines,
    function_entries,
    invoke_burst,
    invoke_ok,
    loki_env,
    reported_drops,
)

SEEDS = [11, 23, 37, 41, 59]


def _random_scenario(rng: random.Random) -> list[tuple[str, int]]:
    """A random number of invokes, each with a random line count; the last one is
    often large so SHUTDOWN finds records still in flight (telemetry buffer, queue)."""
    invokes = rng.randint(0, 25)
    plan = [(f"s{i:03d}", rng.choice([0, 1, 3, 50, 120, 400])) for i in range(invokes)]
    if invokes and rng.random() < 0.7:
        plan[-1] = (plan[-1][0], rng.randint(1_000, 5_000))
    return plan


@pytest.mark.arm64
@pytest.mark.parametrize("seed", SEEDS)
def test_shutdown_at_random_point_loses_nothing(
    make_emulator: MakeEmulator, receiver: Any, seed: int
) -> None:
    rng = random.Random(seed)
    plan = _random_scenario(rng)
    batch = rng.choice(["1", "100", "1000", "10000"])
    reason = rng.choice(["spindown", "timeout", "failure"])
    name = f"e2e-shutdown-{seed}"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: batch}), function_name=name
    )
    budget = batch_budget()
    expected: list[str] = []
    for prefix, count in plan:
        expected += invoke_burst(emulator, budget, prefix, count, 40)

    result = emulator.shutdown(reason=reason)

    assert_clean_shutdown(result)
    # A healthy local Loki leaves no excuse to drop anything.
    stored = [e.line for e in function_entries(receiver, name)]
    assert_same_lines(stored, expected, f"seed {seed}: {len(plan)} invokes, batch {batch}, {reason}")
    assert reported_drops(emulator) == 0
    assert_no_resent_entries(receiver)
    if plan:
        budget.check()


def _backlog(emulator: Any, rng: random.Random) -> list[str]:
    expected: list[str] = []
    for i in range(rng.randint(3, 8)):
        prefix = f"q{i:03d}"
        count = rng.randint(500, 2_000)
        invoke_ok(emulator, [{"burst": {"prefix": prefix, "count": count, "width": 60}}])
        expected.extend(burst_lines(prefix, count, 60))
    return expected


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_shutdown_with_slow_loki_stores_or_reports_every_line(
    make_emulator: MakeEmulator, receiver: Any, seed: int
) -> None:
    # GIVEN a backlog and a Loki that takes 0.6 s per answer
    name = f"e2e-shutdown-slow-{seed}"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "200"}), function_name=name
    )
    expected = _backlog(emulator, random.Random(seed))
    receiver.faults.slow(0.6)

    # WHEN SHUTDOWN arrives
    result = emulator.shutdown()

    # THEN the extension still exits in time and every line is stored or counted as dropped
    assert_clean_shutdown(result)
    receiver.faults.clear()
    stored = [e.line for e in function_entries(receiver, name)]
    assert len(set(stored)) == len(stored), "duplicates stored"
    assert set(stored) <= set(expected)
    dropped = reported_drops(emulator)
    # Nothing unaccounted for. A push the extension gave up on at the deadline may still
    # be stored by the (slow) server afterwards: the at-least-once ambiguity of any HTTP
    # client, so the sum may exceed the lines emitted by at most one request's entries.
    one_request = max((r.entries_received for r in receiver.push_requests()), default=0)
    assert len(expected) <= len(stored) + dropped <= len(expected) + one_request, (
        f"stored {len(stored)} + reported dropped {dropped} vs emitted {len(expected)}"
    )


@pytest.mark.parametrize("seed", SEEDS[2:4])
def test_shutdown_with_loki_down_reports_exactly_what_it_dropped(
    make_emulator: MakeEmulator, receiver: Any, seed: int
) -> None:
    # GIVEN a backlog when Loki goes down (503) just before SHUTDOWN
    name = f"e2e-shutdown-down-{seed}"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "10000"}), function_name=name
    )
    expected = _backlog(emulator, random.Random(seed))
    receiver.faults.outage(status=503)

    # WHEN SHUTDOWN arrives
    result = emulator.shutdown()

    # THEN it gives up inside the deadline, and stored + reported dropped == emitted exactly
    assert_clean_shutdown(result)
    stored = [e.line for e in function_entries(receiver, name)]
    assert len(set(stored)) == len(stored) and set(stored) <= set(expected)
    dropped = reported_drops(emulator)
    assert dropped > 0, "Loki was down: something must have been dropped"
    assert len(stored) + dropped == len(expected), (len(stored), dropped, len(expected))


def test_function_timeout_reset_ships_what_was_written(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN a function that writes lines and then hangs past its timeout, with no batch
    # or age trigger due before then (so only the SHUTDOWN drain can ship them)
    name = "e2e-timeout-reset"
    env = {envvars.DISPATCH_MIN_BATCH_SIZE: "10000", envvars.LOKI_FLUSH_INTERVAL_MS: "60000"}
    emulator = make_emulator(loki_env(receiver, flush="batch", **env), function_name=name, timeout_s=1.5)
    invoke_ok(emulator, [{"print": ["before-timeout"]}])
    result = emulator.invoke(
        {"steps": [{"burst": {"prefix": "to", "count": 500, "width": 40}}, {"hang": True}]}
    )

    # WHEN Lambda times it out and resets the environment (SHUTDOWN, reason "timeout")
    assert result.status == "timeout", result
    [(reason, shutdown)] = emulator.resets
    assert reason == "timeout"

    # THEN the extension still drained inside the deadline: every line stored or reported
    assert_clean_shutdown(shutdown)
    expected = ["before-timeout", *burst_lines("to", 500, 40)]
    stored = [e.line for e in function_entries(receiver, name)]
    assert len(set(stored)) == len(stored) and set(stored) <= set(expected)
    assert len(stored) + reported_drops(emulator) == len(expected)
    assert reported_drops(emulator) == 0, "a healthy local Loki leaves no excuse to drop"
