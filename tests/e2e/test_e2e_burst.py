"""A burst of 100,000 lines over 1,000 invokes, with the environment frozen between
invokes: every line is stored exactly once and no invoke pays for the shipping."""

from __future__ import annotations

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
    invoke_ok,
    loki_env,
    reported_drop_counters,
)

INVOKES = 1_000
LINES_PER_INVOKE = 100
WIDTH = 80


@pytest.mark.arm64
def test_burst_100k_lines_over_1000_frozen_invokes(make_emulator: MakeEmulator, receiver: Any) -> None:
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "500"}),
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


def test_lambda_side_drops_are_counted_and_reported(make_emulator: MakeEmulator, receiver: Any) -> None:
    """When Lambda's own telemetry buffer overflows (here: a 64 KiB per-subscriber buffer
    and 300 KB written in a few milliseconds), Lambda drops records and says so with
    ``platform.logsDropped``. The extension must count exactly what Lambda said, so that
    stored + reported covers every line."""
    name = "e2e-lambda-drops"
    invokes, count = 3, 3_000
    emulator = make_emulator(loki_env(receiver), function_name=name, telemetry_buffer_limit_bytes=64 * 1024)
    expected: list[str] = []
    for i in range(invokes):
        invoke_ok(emulator, [{"burst": {"prefix": f"ld{i}", "count": count, "width": 100}}])
        expected.extend(burst_lines(f"ld{i}", count, 100))
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)

    told = sum(d["droppedRecords"] for d in emulator.logs_dropped_sent)
    assert told > 0, "the scenario did not make Lambda drop anything"
    counters = reported_drop_counters(emulator)
    assert counters.get("lambda_logs_dropped") == told, (counters, told)
    stored = [e.line for e in function_entries(receiver, name)]
    assert len(set(stored)) == len(stored) and set(stored) <= set(expected)
    # Lambda's count also covers the few platform records (START/END/REPORT per invoke,
    # init events) it dropped, which are not lines; so the sum may exceed by that much.
    excess = len(stored) + told - len(expected)
    assert 0 <= excess <= 3 * invokes + 5, (
        f"stored {len(stored)} + reported {told} vs emitted {len(expected)}"
    )
