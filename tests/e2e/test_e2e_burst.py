"""A burst of 100,000 lines over 1,000 invokes, with the environment frozen between
invokes: every line is stored exactly once and no invoke pays for the shipping."""

from __future__ import annotations

from typing import Any

from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_clean_shutdown,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    burst_lines,
    function_entries,
    invoke_ok,
    loki_env,
)

INVOKES = 1_000
LINES_PER_INVOKE = 100
WIDTH = 80


def test_burst_100k_lines_over_1000_frozen_invokes(make_emulator: MakeEmulator, receiver: Any) -> None:
    emulator = make_emulator(
        loki_env(receiver, **{envvars.DISPATCH_MIN_BATCH_SIZE: "500"}),
        function_name="e2e-burst",
        memory_mb=128,
    )
    budget = batch_budget()
    expected: list[str] = []
    for i in range(INVOKES):
        prefix = f"b{i:04d}"
        steps = [{"burst": {"prefix": prefix, "count": LINES_PER_INVOKE, "width": WIDTH}}]
        budget.add(invoke_ok(emulator, steps))
        expected.extend(burst_lines(prefix, LINES_PER_INVOKE, WIDTH))
    shutdown = emulator.shutdown()

    stored = [e.line for e in function_entries(receiver, "e2e-burst")]
    assert len(expected) == INVOKES * LINES_PER_INVOKE
    assert_same_lines(stored, expected, "burst lines")
    assert_no_resent_entries(receiver)
    budget.check()
    assert_clean_shutdown(shutdown)
    # Timestamps are the telemetry events' own (Lambda stamps them with millisecond
    # precision), not the time the extension got round to them: on the millisecond,
    # give or take the few nanoseconds the extension adds to keep lines of the same
    # millisecond distinct (Loki drops identical timestamp+line pairs), and in order.
    entries = sorted(function_entries(receiver, "e2e-burst"), key=lambda e: e.line)
    off_ms = [e for e in entries if e.ts_ns % 1_000_000 >= 10_000]
    assert not off_ms, f"{len(off_ms)} timestamps are not the events' own, e.g. {off_ms[0]}"
    ts = [e.ts_ns for e in entries]
    assert ts == sorted(ts), "timestamps are not in emission order"
