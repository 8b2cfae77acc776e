"""The default flush policy (adaptive) as a user sees it in Loki.

- Sparse traffic (each invoke followed by a freeze of 1 s or more): every line of an invoke
  is in Loki when the invoke returns, so nothing waits in a frozen environment for the next
  invoke; the cold-start invoke included.
- Dense traffic (back-to-back invokes): the function does not wait for the push; the lines
  ship in the thawed time of the following invokes, and all arrive.
Every test runs with default settings only (nothing but the Loki URL).
"""

from __future__ import annotations

import threading
from typing import Any

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    ARRIVAL_TIMEOUT_S,
    assert_clean_shutdown,
    assert_same_lines,
    batch_budget,
    burst_lines,
    function_entries,
    held_invoke,
    invoke_ok,
    loki_env,
    reported_drops,
    wait_until,
)

#: "Sparse": the environment stays frozen this long after each invoke (the scenario itself,
#: not a synchronisation: nothing the extension does may depend on it).
FROZEN_S = 1.0
#: Invokes that count as dense only after this many short idle gaps in a row.
DENSE_STREAK = 3


def _stored(receiver: Any, name: str) -> list[str]:
    return [e.line for e in function_entries(receiver, name)]


def test_sparse_invokes_are_in_loki_before_the_freeze(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN default settings and invokes far apart (each followed by a freeze)
    name = "e2e-adaptive-sparse"
    emulator = make_emulator(loki_env(receiver), function_name=name)
    expected: list[str] = []
    for i in range(6):
        count = [1, 21, 200][i % 3]
        # WHEN an invoke writes lines and returns
        invoke_ok(emulator, [{"burst": {"prefix": f"sparse{i}", "count": count, "width": 40}}])
        expected.extend(burst_lines(f"sparse{i}", count, 40))
        # THEN all of them are in Loki now that the environment is frozen, and stay the only ones
        assert emulator.frozen
        assert_same_lines(_stored(receiver, name), expected, f"invoke {i}, right after it returned")
        threading.Event().wait(FROZEN_S)
        assert emulator.frozen
        assert_same_lines(_stored(receiver, name), expected, f"invoke {i}, {FROZEN_S} s into the freeze")
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    assert_same_lines(_stored(receiver, name), expected, "after SHUTDOWN")
    assert reported_drops(emulator) == 0


def test_cold_start_invoke_is_in_loki_before_the_freeze(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN fresh environments (the extension still warming up when the first invoke comes)
    for run in range(3):
        name = f"e2e-adaptive-cold-{run}"
        emulator = make_emulator(loki_env(receiver), function_name=name)
        # WHEN the very first invoke writes lines
        invoke_ok(emulator, [{"burst": {"prefix": f"cold{run}", "count": 21, "width": 40}}])
        # THEN they are in Loki when it returns (the environment is frozen now)
        assert emulator.frozen
        assert_same_lines(_stored(receiver, name), burst_lines(f"cold{run}", 21, 40), f"cold start {run}")
        emulator.shutdown()


def test_dense_invokes_do_not_wait_for_a_slow_loki(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN default settings and a Loki taking 200 ms per push
    name = "e2e-adaptive-dense"
    emulator = make_emulator(loki_env(receiver), function_name=name)
    receiver.faults.slow(0.2)
    budget = batch_budget()
    expected: list[str] = []
    # WHEN invokes come back to back
    for i in range(30):
        result = invoke_ok(emulator, [{"burst": {"prefix": f"dense{i:02d}", "count": 10, "width": 30}}])
        expected.extend(burst_lines(f"dense{i:02d}", 10, 30))
        if i >= DENSE_STREAK:  # the cold start and the first gaps are handled as sparse
            budget.add(result)
    # THEN the function did not wait for the pushes (the batch-mode budget) ...
    budget.check()
    # ... AND the lines ship in the thawed time of the next invoke, no SHUTDOWN needed, none twice
    receiver.faults.clear()
    with held_invoke(emulator, [{"print": ["held"]}]):
        ok = wait_until(lambda: len(_stored(receiver, name)) >= len(expected), ARRIVAL_TIMEOUT_S)
        assert ok, f"{len(_stored(receiver, name))} of {len(expected)} lines while the next invoke ran"
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    assert_same_lines(_stored(receiver, name), [*expected, "held"], "dense run")
    assert reported_drops(emulator) == 0
