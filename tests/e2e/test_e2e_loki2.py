"""Loki 2.x (structured metadata rejected with a 400 for the whole request): the
extension falls back on its own, nothing is lost, nothing is stored twice, and the
request id still reaches Loki (in the line instead of metadata)."""

from __future__ import annotations

import pytest
from loki_telemetry_extension import envvars

from harness.loki_receiver import LokiReceiver
from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_clean_shutdown,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    bursts_with_error_lines,
    function_entries,
    loki_env,
    message_of,
    reported_drops,
)


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_loki2_falls_back_without_loss_or_duplicates(make_emulator: MakeEmulator, log_format: str) -> None:
    name = f"e2e-loki2-{log_format.lower()}"
    with LokiReceiver(structured_metadata=False) as loki2:
        emulator = make_emulator(
            loki_env(loki2, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "25"}),
            function_name=name,
            log_format=log_format,
        )
        budget = batch_budget()
        expected, request_ids = bursts_with_error_lines(emulator, budget, "l2-", 8)
        shutdown = emulator.shutdown()

        entries = function_entries(loki2, name)
        messages = [message_of(e.line) for e in entries]
        # Text logging lines carry the runtime's "[LEVEL]\t<time>\t<id>\t" prefix and
        # the fallback may add its own fields: match the user's text at the end.
        normalised = [next((x for x in expected if m.endswith(x) or x in m), m) for m in messages]
        assert_same_lines(normalised, expected, "Loki 2.x")
        assert all(not e.metadata for e in entries), "Loki 2.x stored structured metadata?"
        # The first push is rejected (400, nothing stored); after that it never sends metadata again.
        rejected = [r for r in loki2.requests if r.status == 400]
        assert 1 <= len(rejected) <= 2, f"{len(rejected)} rejected pushes: fallback not sticky"
        assert_no_resent_entries(loki2)
        assert reported_drops(emulator) == 0
        # The request id is not lost: it moved into the line.
        for rid in request_ids:
            assert any(rid in e.line for e in entries), f"request id {rid} not in any stored line"
        assert_clean_shutdown(shutdown)
        budget.check()
