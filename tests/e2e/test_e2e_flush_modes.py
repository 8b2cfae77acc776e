"""Flush modes. Ship-before-freeze: each invoke's lines are in Loki when ``invoke()``
returns. Batch mode: the function never waits; lines ship in the background once the
batch is full or old enough while the environment is thawed, and the rest by the
next invoke or at SHUTDOWN."""

from __future__ import annotations

from typing import Any

import pytest
from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    ARRIVAL_TIMEOUT_S,
    assert_clean_shutdown,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    burst_lines,
    function_entries,
    held_invoke,
    invoke_burst,
    invoke_ok,
    loki_env,
    message_of,
    ship_budget,
    wait_until,
)


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_ship_before_freeze_lines_stored_when_invoke_returns(
    make_emulator: MakeEmulator, receiver: Any, log_format: str
) -> None:
    name = f"e2e-sbf-{log_format.lower()}"
    emulator = make_emulator(
        loki_env(
            receiver, **{envvars.LOKI_SHIP_BEFORE_FREEZE: "true", envvars.DISPATCH_MIN_BATCH_SIZE: "1000"}
        ),
        function_name=name,
        log_format=log_format,
    )
    budget = ship_budget()
    expected: list[str] = []
    for i in range(15):
        count = [1, 5, 40, 200][i % 4]
        expected += invoke_burst(emulator, budget, f"sbf{i:02d}", count, 50)
        # No waiting at all: the invoke is over, so its lines must already be stored.
        stored = [message_of(e.line) for e in function_entries(receiver, name)]
        assert_same_lines(stored, expected, f"after invoke {i}")
    assert_no_resent_entries(receiver)
    emulator.shutdown()
    budget.check()


def test_ship_before_freeze_is_bounded_by_the_invoke_deadline(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    """With Loki hanging, ship-before-freeze must still call ``next`` before the
    function's deadline rather than hold the environment indefinitely."""
    name = "e2e-sbf-deadline"
    timeout_s = 3.0
    emulator = make_emulator(
        loki_env(receiver, **{envvars.LOKI_SHIP_BEFORE_FREEZE: "true"}),
        function_name=name,
        timeout_s=timeout_s,
    )
    invoke_ok(emulator, [{"print": ["warm"]}])
    receiver.faults.slow(30.0)
    result = invoke_ok(emulator, [{"print": ["stuck behind a hanging Loki"]}])
    assert result.duration_ms + result.post_runtime_ms <= timeout_s * 1000 + 500, result
    receiver.faults.clear()
    emulator.shutdown()


def test_batch_mode_ships_full_batch_while_thawed(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN batch mode with a batch size of 50 and a long flush interval
    name = "e2e-batch-size"
    emulator = make_emulator(
        loki_env(
            receiver,
            flush="batch",
            **{envvars.DISPATCH_MIN_BATCH_SIZE: "50", envvars.LOKI_FLUSH_INTERVAL_MS: "60000"},
        ),
        function_name=name,
    )
    expected = burst_lines("full", 50, 20)
    # WHEN the function writes a full batch and stays running
    with held_invoke(emulator, [{"burst": {"prefix": "full", "count": 50, "width": 20}}]):
        # THEN the batch arrives without waiting for the invoke to end
        arrived = receiver.wait_for_count(50, f'{{function="{name}"}}', timeout=ARRIVAL_TIMEOUT_S)
        assert arrived, f"only {len(function_entries(receiver, name))}/50 lines while thawed"
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, "full batch")
    emulator.shutdown()


def test_batch_mode_ships_previous_invokes_lines_during_next_invoke(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    # GIVEN batch mode; invoke 1 writes fewer lines than a batch, then the environment freezes
    name = "e2e-batch-age"
    emulator = make_emulator(
        loki_env(
            receiver,
            flush="batch",
            **{envvars.DISPATCH_MIN_BATCH_SIZE: "10000", envvars.LOKI_FLUSH_INTERVAL_MS: "200"},
        ),
        function_name=name,
    )
    budget = batch_budget()
    budget.add(invoke_ok(emulator, [{"print": ["first-1", "first-2", "first-3"]}]))
    # WHEN the next invoke runs (environment thawed)
    with held_invoke(emulator, [{"print": ["second-1"]}]):
        # THEN the earlier, now old, lines are shipped during it
        ok = wait_until(
            lambda: {"first-1", "first-2", "first-3"} <= {e.line for e in function_entries(receiver, name)},
            ARRIVAL_TIMEOUT_S,
        )
        assert ok, f"stored: {[e.line for e in function_entries(receiver, name)]}"
    # AND whatever is left goes at SHUTDOWN
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    assert_same_lines(
        [e.line for e in function_entries(receiver, name)], ["first-1", "first-2", "first-3", "second-1"]
    )
    budget.check()


def test_batch_mode_adds_nothing_to_invokes_with_small_batches(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    """Batch size 1 means a push per record: still the function must not wait for it."""
    name = "e2e-batch-1"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "1"}), function_name=name
    )
    receiver.faults.slow(0.2)
    budget = batch_budget()
    expected: list[str] = []
    for i in range(10):
        expected += invoke_burst(emulator, budget, f"one{i}", 5, 10)
    receiver.faults.clear()
    emulator.shutdown()
    budget.check()
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected)
