"""`python -m bench --smoke` runs every figure on both builds and writes the documented schema.

Benchmarks are not timed tests: this checks that every figure's harness works for the
Python and the native build and that the output is well formed, never the figures' values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.figure import NAMES
from bench.model import ANY, BUILDS, SCHEMA

REPO = Path(__file__).resolve().parents[2]

#: Row keys that carry a goal (the product's targets for both builds), by figure.
GOAL_ROWS = {
    "init": {"init_to_first_next"},
    "invoke_overhead": {"post_runtime_default"},
    "cpu_per_line": {"cpu_us_per_line_typical"},
    "memory": {"idle_peak_rss", "full_buffer_peak_rss"},
    "latency": {"sparse_missing_after_freeze", "latency_sparse_p99", "latency_dense_p99"},
    "throughput": {"direct_lines_per_s"},
    "size": {"layer_mib_x86_64", "layer_mib_arm64"},
    "synth_scaling": {"synth_1_functions"},
    "reliability": {"random_shutdown_dropped"},
    "managed_instances": {"mi_stored_before_shutdown", "mi_stored_after_shutdown", "mi_latency_p99"},
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    env["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    return proc, out


@pytest.fixture(scope="module")
def doc(smoke: tuple[subprocess.CompletedProcess[str], Path]) -> dict[str, Any]:
    proc, out = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    data: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return data


def test_smoke_measures_every_figure_on_both_builds(doc: dict[str, Any]) -> None:
    assert doc["schema"] == SCHEMA
    assert doc["mode"] == "smoke"
    assert [b["name"] for b in doc["builds"]] == list(BUILDS)
    assert [f["name"] for f in doc["figures"]] == list(NAMES)
    for fig in doc["figures"]:
        assert fig["status"] == "ok", fig["error"]
        assert fig["rows"], fig["name"]
        for r in fig["rows"]:
            # Side by side: both builds, or one value that does not depend on the build.
            assert set(r["values"]) in ({"python", "native"}, {ANY}), (fig["name"], r["key"])


def test_rows_have_summaries_ratios_and_goals(doc: dict[str, Any]) -> None:
    for fig in doc["figures"]:
        keys = {r["key"] for r in fig["rows"]}
        assert GOAL_ROWS[fig["name"]] <= keys, fig["name"]
        for r in fig["rows"]:
            assert r["unit"] and r["label"]
            for v in r["values"].values():
                assert set(v) == {"n", "median", "p50", "p99", "min", "max"}
                assert v["n"] >= 1 and v["min"] <= v["median"] <= v["max"]
            if set(r["values"]) == {"python", "native"} and r["values"]["python"][r["show"]] > 0:
                shown = {b: r["values"][b][r["show"]] for b in BUILDS}
                assert r["ratio"] == pytest.approx(shown["native"] / shown["python"])
            if r["key"] in GOAL_ROWS[fig["name"]]:
                assert r["goals"], r["key"]
                assert r["met"] in (True, False, None)


def test_fault_rows_cover_every_scenario_on_both_builds_and_add_up(doc: dict[str, Any]) -> None:
    rows = next(f for f in doc["figures"] if f["name"] == "reliability")["faults"]
    for build in BUILDS:
        names = " ".join(r["scenario"] for r in rows if r["build"] == build)
        for scenario in ("burst", "beyond the buffer", "outage", "429", "Loki 2.x", "SHUTDOWN", "default"):
            assert scenario in names, (build, scenario)
    for r in rows:
        assert r["emitted"] > 0
        assert r["unaccounted"] == r["emitted"] - r["stored"] - r["reported_dropped"]


def test_markdown_report_puts_the_builds_side_by_side(
    smoke: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    md = (smoke[1] / "latest.md").read_text()
    assert "## Figures" in md and "| figure | metric | python | native |" in md
    assert "## Reliability" in md and "| scenario | build | invokes | emitted | stored |" in md
    assert "Machine:" in md
