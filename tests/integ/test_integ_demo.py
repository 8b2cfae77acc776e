"""Smoke tests of ``make demo``'s core: the real CDK CLI, moto server, the emulator, the receiver.

Few uploads keep them to tens of seconds; ``make demo`` itself runs 20.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.loki_receiver import LokiReceiver
from integ import demo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UPLOADS = 3
#: The ingest handler writes three lines per one-record event: "received", the put_item print, "stored".
LINES_PER_UPLOAD = 3
SUMMARY = re.compile(
    r"^delivered (\d+)/(\d+) log lines to Loki at (http://127\.0\.0\.1:\d+/loki/api/v1/push)$"
)


@dataclass
class Run:
    result: demo.DemoResult
    output: list[str]
    work_dir: Path


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    output: list[str] = []
    work_dir = tmp_path_factory.mktemp("demo")
    result = demo.run(uploads=UPLOADS, work_dir=work_dir, out=output.append)
    return Run(result, output, work_dir)


def test_every_emitted_line_reaches_loki(clean_run: Run) -> None:
    result = clean_run.result
    assert result.emitted == UPLOADS * LINES_PER_UPLOAD
    assert result.stored == result.emitted
    assert result.ok
    assert result.items_in_table == UPLOADS


def test_output_ends_with_exactly_one_summary_line(clean_run: Run) -> None:
    summaries = [line for line in clean_run.output if SUMMARY.match(line)]
    assert summaries == [clean_run.output[-1]]
    match = SUMMARY.match(clean_run.output[-1])
    assert match is not None
    assert match.group(1) == match.group(2) == str(UPLOADS * LINES_PER_UPLOAD)
    assert match.group(3) == clean_run.result.loki_url


def test_report_names_the_instrumented_and_the_skipped_functions(clean_run: Run) -> None:
    result = clean_run.result
    assert result.instrumented == ["LokiSampleApp/Ingest/Resource"]
    assert "not Python" in result.skipped["LokiSampleApp/Audit/Resource"]
    assert any("custom-resource provider" in why for why in result.skipped.values())


def test_the_run_leaves_the_staged_assets_as_cdk_wrote_them(clean_run: Run) -> None:
    # The function ran from cdk.out in place: like Lambda's read-only /var/task, no bytecode lands there.
    # The only .pyc are the ones the layer ships (synth-time, PEP 552 unchecked-hash: flags == 1);
    # one the run wrote would be timestamp-based (flags == 0) or sit outside the layer's package.
    cdk_out = clean_run.work_dir / "cdk.out"
    assert list(cdk_out.glob("asset.*"))
    for pyc in cdk_out.rglob("*.pyc"):
        assert pyc.parent.name == "__pycache__" and pyc.parent.parent.name == "loki_telemetry_extension", pyc
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, pyc
    assert all(cache.parent.name == "loki_telemetry_extension" for cache in cdk_out.rglob("__pycache__"))


def test_lines_are_counted_by_label_set(clean_run: Run) -> None:
    (key,) = clean_run.result.by_labels
    assert 'function="LokiSampleApp-Ingest"' in key
    assert 'source="lambda"' in key
    assert 'app="loki-sample"' in key


@pytest.fixture(scope="module")
def strict_receiver() -> Iterator[LokiReceiver]:
    # Rejects lines over 100 bytes with a 400 (as Loki does over max_line_size), storing the rest:
    # the handler's "put_item" and "stored" lines are longer, its "received" lines shorter.
    with LokiReceiver(max_line_size=100) as rx:
        yield rx


def test_lost_lines_are_reported_and_fail_the_run(strict_receiver: LokiReceiver, tmp_path: Path) -> None:
    output: list[str] = []
    result = demo.run(uploads=2, work_dir=tmp_path, receiver=strict_receiver, out=output.append)
    diagnostics = "\n".join([*output, *map(str, strict_receiver.requests)])
    assert result.emitted == 2 * LINES_PER_UPLOAD
    assert 0 < result.stored < result.emitted, diagnostics
    assert not result.ok
    assert any(
        line.startswith(f"!! {result.lost} of {result.emitted} function log lines are missing")
        for line in output
    )
    assert (
        output[-1] == f"delivered {result.stored}/{result.emitted} log lines to Loki at {strict_receiver.url}"
    )


def test_cli_with_loki_url_ships_there_and_counts_through_its_query_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Loki the demo did not start, named by LOKI_URL (the path a real Loki takes)
    with LokiReceiver() as loki:
        monkeypatch.setenv("LOKI_URL", loki.url)
        # WHEN the demo runs from its command line
        code = demo.main(["--uploads", "1", "--work-dir", str(tmp_path)])
        stored_there = loki.count('{function="LokiSampleApp-Ingest"}')
    lines = capsys.readouterr().out.splitlines()
    # THEN it shipped there, counted there, and exited 0
    assert code == 0
    assert f"== Loki: {loki.url} (LOKI_URL)" in lines
    assert lines[-1] == f"delivered {LINES_PER_UPLOAD}/{LINES_PER_UPLOAD} log lines to Loki at {loki.url}"
    assert stored_there == LINES_PER_UPLOAD
