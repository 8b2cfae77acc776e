"""The drop report's text: written and parsed by the same module, in DROP_REASONS order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from loki_telemetry_extension.drop_report import at_shutdown, parse_drop_report, so_far
from loki_telemetry_extension.envvars import DIAG_MARKER, DROP_REASONS


def test_the_exact_text() -> None:
    drops = {"buffer_full": 1, "rejected_by_loki": 2, "shutdown_deadline": 3, "lambda_logs_dropped": 4}
    assert so_far(drops) == ("log entries lost so far: buffer_full=1, rejected_by_loki=2, "
                             "shutdown_deadline=3, lambda_logs_dropped=4")
    assert at_shutdown(drops).startswith("entries lost in this environment: buffer_full=1, ")


@given(st.lists(st.integers(0, 10**9), min_size=len(DROP_REASONS), max_size=len(DROP_REASONS)), st.booleans())
def test_parse_reads_back_what_is_written(counts: list[int], shutdown: bool) -> None:
    drops = dict(zip(DROP_REASONS, counts, strict=True))
    line = f"{DIAG_MARKER} {(at_shutdown if shutdown else so_far)(drops)}"
    assert parse_drop_report(line) == drops


def test_other_lines_are_not_reports() -> None:
    assert parse_drop_report("log entries lost so far: buffer_full=x") is None
    assert parse_drop_report("hello") is None
