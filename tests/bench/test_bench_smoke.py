"""`python -m bench --smoke` runs every figure end to end and writes the documented schema.

Benchmarks are not timed tests: this checks that the harness works and the output is
well formed, never the figures' values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.model import SCHEMA
from bench.runner import FIGURES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    env["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )
    return proc, out


@pytest.fixture(scope="module")
def doc(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    proc, out = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    data: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return data


def test_smoke_measures_every_figure(doc: dict[str, Any]) -> None:
    assert doc["schema"] == SCHEMA
    assert doc["mode"] == "smoke"
    assert [f["name"] for f in doc["figures"]] == list(FIGURES)
    for fig in doc["figures"]:
        assert fig["status"] == "ok", fig["error"]
        assert fig["metrics"] or fig["faults"], fig["name"]


def test_metrics_have_summaries_baselines_and_goals(doc: dict[str, Any]) -> None:
    for fig in doc["figures"]:
        for m in fig["metrics"]:
            assert set(m["value"]) == {"n", "median", "p50", "p99", "min", "max"}
            assert m["value"]["n"] >= 1 and m["value"]["min"] <= m["value"]["median"] <= m["value"]["max"]
            assert m["unit"] and m["label"]
            if m["baseline"] is not None and m["baseline"]["median"] > 0:
                assert m["ratio"] == pytest.approx(m["value"]["median"] / m["baseline"]["median"])
            if m["goal"] is not None:
                assert m["met"] in (True, False, None)
    goals = {m["key"] for f in doc["figures"] for m in f["metrics"] if m["goal"]}
    # Issue 5's goals: init <= 2x, <= 1 ms added, CPU <= 2x floor, idle <= 20 MB, synth <= 1.2x.
    assert {"init_to_first_next", "post_runtime_no_flush", "cpu_us_per_line_short", "idle_peak_rss"} <= goals
    assert any(k.startswith("synth_") for k in goals)


def test_fault_rows_cover_every_scenario_and_add_up(doc: dict[str, Any]) -> None:
    rows = next(f for f in doc["figures"] if f["name"] == "faults")["faults"]
    names = " ".join(r["scenario"] for r in rows)
    for scenario in ("burst", "outage", "429", "SHUTDOWN", "Loki 2.x"):
        assert scenario in names
    for r in rows:
        assert r["emitted"] > 0
        assert r["unaccounted"] == r["emitted"] - r["stored"] - r["reported_dropped"]


def test_markdown_report_has_both_tables(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    md = (smoke[1] / "latest.md").read_text()
    assert "## Performance" in md and "| figure | metric | median |" in md
    assert "## Reliability" in md and "| scenario | invokes | emitted | stored |" in md
    assert "Machine:" in md
