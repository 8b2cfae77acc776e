"""Lines longer than Loki's max_line_size (256,000 bytes) are split or truncated with
a marker, never rejected wholesale, and never poison the batch they travel in."""

from __future__ import annotations

from typing import Any

import pytest
from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_same_lines,
    batch_budget,
    function_entries,
    invoke_ok,
    loki_env,
    message_of,
)

LIMIT = envvars.SETTINGS[envvars.LOKI_MAX_LINE_BYTES].default


@pytest.mark.parametrize(
    ("log_format", "char", "size"),
    [
        ("Text", "x", 300_000),  # just over the limit
        ("Text", "é", 700_000),  # 2-byte UTF-8, several pieces; splits must respect code points
        ("JSON", "z", 600_000),
    ],
)
def test_huge_line_split_or_truncated_never_poisons_batch(
    make_emulator: MakeEmulator, receiver: Any, log_format: str, char: str, size: int
) -> None:
    name = f"e2e-huge-{log_format.lower()}"
    emulator = make_emulator(loki_env(receiver, flush="batch"), function_name=name, log_format=log_format)
    budget = batch_budget()
    normal_before = [f"before-{i}" for i in range(20)]
    normal_after = [f"after-{i}" for i in range(20)]
    prefix = "HUGE-LINE-START|"
    budget.add(
        invoke_ok(
            emulator,
            [
                {"print": normal_before},
                {"huge": {"prefix": prefix, "size": size, "char": char}},
                {"print": normal_after},
            ],
        )
    )
    budget.add(invoke_ok(emulator, [{"print": ["next-invoke"]}]))
    emulator.shutdown()
    budget.check()

    entries = function_entries(receiver, name)
    # Every stored entry respects Loki's limit (the receiver enforces it like Loki:
    # an entry over it would have been rejected, not stored).
    for e in entries:
        assert len(e.line.encode()) <= LIMIT
    normal = [message_of(e.line) for e in entries if char * 50 not in e.line]
    assert_same_lines(normal, [*normal_before, *normal_after, "next-invoke"], "lines around the huge one")

    pieces = [message_of(e.line) for e in entries if char * 50 in e.line]
    assert pieces, "the huge line vanished: neither split nor truncated"
    assert prefix in pieces[0] or any(prefix in p for p in pieces)
    shipped = sum(p.count(char) for p in pieces)
    if shipped != size - len(prefix):
        # Truncated: allowed only with a visible marker saying so.
        assert any("truncat" in p.lower() for p in pieces), f"{shipped} of {size} chars shipped, no marker"
    else:
        # Split: more than one piece, each marked as a continuation so it can be reassembled.
        assert len(pieces) >= 2
