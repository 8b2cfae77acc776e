"""Unit tests for bench's statistics, goals, drop-report parsing and report rendering."""

from __future__ import annotations

import pytest

from bench.model import FaultRow, FigureResult, Goal, Metric
from bench.report import to_markdown
from bench.session import reported_drops
from bench.stats import Summary, interleave, median, percentile


def test_percentile_interpolates_between_ranks() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile(data, 50) == pytest.approx(2.5)
    assert percentile(data, 99) == pytest.approx(3.97)
    assert median([5.0, 1.0, 3.0]) == 3.0


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_interleave_alternates_variants() -> None:
    calls: list[str] = []

    def a() -> float:
        calls.append("a")
        return 1.0

    def b() -> float:
        calls.append("b")
        return 2.0

    out = interleave([a, b], 3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert out == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]


def test_goal_on_ratio_and_on_added_p50() -> None:
    ratio_goal = Goal(text="<= 2x", compare="ratio", threshold=2.0)
    m = Metric(key="k", label="l", unit="ms", value=Summary.of([3.0]), baseline=Summary.of([2.0]),
               goal=ratio_goal)
    assert m.ratio == pytest.approx(1.5)
    assert m.met is True
    worse = Metric(key="k", label="l", unit="ms", value=Summary.of([5.0]), baseline=Summary.of([2.0]),
                   goal=ratio_goal)
    assert worse.met is False
    added = Goal(text="<= 1 ms added", compare="p50_added", threshold=1.0)
    assert Metric(key="k", label="l", unit="ms", value=Summary.of([1.5]), baseline=Summary.of([0.0]),
                  goal=added).met is False
    assert Metric(key="k", label="l", unit="ms", value=Summary.of([0.5]), baseline=Summary.of([0.0]),
                  goal=added).met is True
    # No baseline: no ratio, so a ratio goal cannot be judged.
    assert Metric(key="k", label="l", unit="ms", value=Summary.of([1.0]), goal=ratio_goal).met is None


def test_fault_row_unaccounted_is_what_is_neither_stored_nor_reported() -> None:
    assert FaultRow("s", emitted=100, stored=90, reported_dropped=10).unaccounted == 0
    assert FaultRow("s", emitted=100, stored=80, reported_dropped=10).unaccounted == 10


def test_reported_drops_takes_the_latest_cumulative_report() -> None:
    lines = [
        "[loki-telemetry-extension] something else=5",
        "[loki-telemetry-extension] log entries lost so far: buffer_full=3, rejected_by_loki=0",
        "[loki-telemetry-extension] entries lost in this environment: buffer_full=7, rejected_by_loki=2",
    ]
    assert reported_drops(lines) == {"buffer_full": 7, "rejected_by_loki": 2}
    assert reported_drops(["no report here"]) == {}


def test_markdown_shows_goals_missed_and_fault_rows() -> None:
    fig = FigureResult(name="f", title="Fig")
    fig.metrics.append(Metric(key="k", label="lbl", unit="ms", value=Summary.of([4.0]),
                              baseline=Summary.of([1.0]), baseline_label="base",
                              goal=Goal(text="<= 2x", compare="ratio", threshold=2.0)))
    fig.faults.append(FaultRow("outage", emitted=10, stored=9, reported_dropped=1, invokes=2))
    doc = {"mode": "smoke", "started_utc": "a", "finished_utc": "b", "duration_s": 1.0, "command": "c",
           "machine": {"cpu": "x", "cpus": 2, "mem_mib": 1, "os": "Linux", "machine": "x86_64",
                       "python_extension": "3.11", "python_bench": "3.11", "loadavg_at_start": [0.5],
                       "git_commit": "abc"},
           "figures": [fig.as_dict()]}
    md = to_markdown(doc)
    assert "| Fig | lbl | 4.00 ms |" in md
    assert "4.00x" in md and "**no**" in md
    assert "| outage | 2 | 10 | 9 | 1 | 0 |" in md


def test_splice_replaces_only_the_marked_block() -> None:
    from bench.report import BEGIN_MARK, END_MARK, splice

    text = f"intro\n{BEGIN_MARK}\nold figures\n{END_MARK}\noutro\n"
    out = splice(text, f"{BEGIN_MARK}\nnew figures\n{END_MARK}")
    assert out == f"intro\n{BEGIN_MARK}\nnew figures\n{END_MARK}\noutro\n"
    assert splice("intro\n", "BLOCK") == "intro\n\nBLOCK\n"
