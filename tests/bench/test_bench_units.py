"""Unit tests for bench's statistics, goals, drop-report reading, rendering and entry point."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench.context import REPO
from bench.figure import NAMES, load
from bench.model import ANY, FaultRow, FigureResult, Goal, Measured, Row
from bench.report import to_markdown
from bench.session import reported_drops
from bench.stats import Summary, interleave, median, percentile


def s(*xs: float) -> Summary:
    return Summary.of(list(xs))


def test_percentile_interpolates_between_ranks() -> None:
    data = [1.0, 2.0, 3.0, 4.0]
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 4.0
    assert percentile(data, 50) == pytest.approx(2.5)
    assert percentile(data, 99) == pytest.approx(3.97)
    assert median([5.0, 1.0, 3.0]) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_interleave_alternates_variants() -> None:
    calls: list[str] = []

    def a() -> float:
        calls.append("a")
        return 1.0

    def b() -> float:
        calls.append("b")
        return 2.0

    assert interleave([a, b], 2) == [[1.0, 1.0], [2.0, 2.0]]
    assert calls == ["a", "b", "a", "b"]


def test_native_ratio_goal_compares_the_builds() -> None:
    at_most = Goal(text="native ≤ 0.5x python", compare="native_ratio", threshold=0.5)
    at_least = Goal(text="native ≥ 2x python", compare="native_ratio", threshold=2.0, op=">=")
    fast = Row(key="k", label="l", unit="µs", values={"python": s(10.0), "native": s(4.0)}, goals=(at_most,))
    assert fast.ratio == pytest.approx(0.4) and fast.met is True
    slow = Row(key="k", label="l", unit="µs", values={"python": s(10.0), "native": s(6.0)}, goals=(at_most,))
    assert slow.met is False and slow.missed() == ["native ≤ 0.5x python (native/python)"]
    rate = Row(key="k", label="l", unit="/s", values={"python": s(100.0), "native": s(150.0)},
               goals=(at_least,))
    assert rate.met is False
    only_one = Row(key="k", label="l", unit="/s", values={"native": s(150.0)}, goals=(at_least,))
    assert only_one.ratio is None and only_one.met is None


def test_goal_holds_each_named_build_to_its_own_bound() -> None:
    # Memory: each build's bound adds its own idle RSS.
    bound = Goal(text="≤ idle + ...", compare="median", threshold={"python": 30.0, "native": 20.0})
    row = Row(key="k", label="l", unit="MiB", values={"python": s(25.0), "native": s(21.0)}, goals=(bound,))
    assert row.checks()[0][1] == {"python": True, "native": False}
    assert row.missed() == ["≤ idle + ... (native)"]
    native_only = Goal(text="native ≤ 10 MiB", compare="median", threshold=10.0, builds=("native",))
    idle = Row(key="k", label="l", unit="MiB", values={"python": s(14.0), "native": s(9.0)},
               goals=(native_only,))
    assert idle.met is True  # python's 14 MiB is not held to the native bound


def test_p99_max_added_and_baseline_goals() -> None:
    p99 = Goal(text="p99 ≤ 1 s", compare="p99", threshold=1000.0)
    lat = Row(key="k", label="l", unit="ms", values={"python": s(10.0, 2000.0), "native": s(10.0, 20.0)},
              goals=(p99,))
    assert lat.checks()[0][1] == {"python": False, "native": True}
    none_missing = Goal(text="0", compare="max", threshold=0.0)
    assert Row(key="k", label="l", unit="lines", values={"python": s(0.0, 1.0), "native": s(0.0)},
               goals=(none_missing,)).missed() == ["0 (python)"]
    added = Goal(text="p50 added ≤ 1 ms", compare="added_p50", threshold=1.0)
    post = Row(key="k", label="l", unit="ms", values={"python": s(2.5), "native": s(0.5)}, baseline=s(0.2),
               goals=(added,))
    assert post.checks()[0][1] == {"python": False, "native": True}
    synth = Goal(text="≤ 1.2x without", compare="vs_baseline", threshold=1.2)
    for value, met in ((1.3, False), (1.1, True)):
        row = Row(key="k", label="l", unit="s", values={ANY: s(value)}, baseline=s(1.0), goals=(synth,))
        assert row.met is met


def test_fault_row_unaccounted_is_what_is_neither_stored_nor_reported() -> None:
    assert FaultRow("s", "python", emitted=100, stored=90, reported_dropped=10).unaccounted == 0
    assert FaultRow("s", "native", emitted=100, stored=80, reported_dropped=10).unaccounted == 10


def test_reported_drops_takes_the_latest_report_read_by_the_extensions_parser() -> None:
    lines = [
        "[loki-telemetry-extension] something else=5",
        "[loki-telemetry-extension] log entries lost so far: buffer_full=3, rejected_by_loki=0, "
        "shutdown_deadline=0, lambda_logs_dropped=0",
        "[loki-telemetry-extension] entries lost in this environment: buffer_full=7, rejected_by_loki=2, "
        "shutdown_deadline=1, lambda_logs_dropped=0",
    ]
    assert reported_drops(lines) == {"buffer_full": 7, "rejected_by_loki": 2, "shutdown_deadline": 1,
                                     "lambda_logs_dropped": 0}
    assert reported_drops(["no report here"]) == {}


def _doc(*figures: FigureResult) -> dict[str, Any]:
    return {"mode": "smoke", "started_utc": "a", "finished_utc": "b", "duration_s": 1.0, "command": "c",
            "builds": [{"name": "python", "layer": "build/layers/python", "architecture": "x86_64"}],
            "machine": {"cpu": "x", "cpus": 2, "mem_mib": 1, "os": "Linux", "machine": "x86_64",
                        "python_extension": "3.11", "python_bench": "3.11", "loadavg_at_start": [0.5],
                        "git_commit": "abc"},
            "figures": [f.as_dict() for f in figures]}


def test_markdown_puts_builds_side_by_side_with_goals_missed_and_fault_rows() -> None:
    m = Measured()
    m.rows.append(Row(key="k", label="lbl", unit="ms", values={"python": s(20.0), "native": s(4.0)},
                      goals=(Goal(text="native ≤ 0.1x python", compare="native_ratio", threshold=0.1),)))
    m.rows.append(Row(key="syn", label="synth", unit="s", values={ANY: s(3.0)}, baseline=s(2.0),
                      baseline_label="without"))
    m.faults.append(FaultRow("outage", "native", emitted=10, stored=9, reported_dropped=1, invokes=2))
    md = to_markdown(_doc(FigureResult(name="f", title="Fig", measured=m)))
    assert "| Fig | lbl | 20.0 ms | 4.00 ms | 0.20x |  | native ≤ 0.1x python | **no**: " in md
    assert "| Fig | synth | 3.00 s | (same) | 1.50x | 2.00 s (without) |" in md
    assert "| outage | native | 2 | 10 | 9 | 1 | 0 |" in md


def test_every_named_figure_satisfies_the_protocol() -> None:
    for name in NAMES:
        fig = load(name)
        assert fig.name == name and fig.title
        assert list(inspect.signature(fig.measure).parameters) == ["ctx", "smoke"]


def test_a_full_run_writes_results_md_and_never_the_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = REPO / "README.md"
    before = readme.read_bytes() if readme.exists() else b""
    monkeypatch.setattr(bench_main, "ensure_layers", lambda: ())
    monkeypatch.setattr(bench_main, "run", lambda names, **kw: _doc())
    monkeypatch.setattr(bench_main, "DEFAULT_OUT", tmp_path / "results")
    monkeypatch.setattr(bench_main, "RESULTS_MD", tmp_path / "RESULTS.md")
    assert bench_main.main([]) == 0
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Benchmark results")
    assert json.loads((tmp_path / "results" / "latest.json").read_text())["mode"] == "smoke"
    assert (readme.read_bytes() if readme.exists() else b"") == before
