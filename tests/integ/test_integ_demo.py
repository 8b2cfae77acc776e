"""Smoke tests of ``make demo``: the real CDK CLI (esbuild and go bundling), moto server, the
emulator running the TypeScript, Python and Go functions, the receiver.

Few uploads keep them to tens of seconds; ``make demo`` itself puts 20 objects per function.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo import run as demo
from harness.loki_receiver import LokiReceiver
from sample_app.stack import FUNCTIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UPLOADS = 3
#: Every handler writes three lines per one-record event: "received", "put_item", "stored".
LINES_PER_UPLOAD = 3
SUMMARY = re.compile(
    r"^delivered (\d+)/(\d+) log lines to Loki at (http://127\.0\.0\.1:\d+/loki/api/v1/push)$"
)
FUNCTION_SUMMARY = re.compile(
    r"^(?:   |!! )(\w+): delivered (\d+)/(\d+) log lines \(([\w.]+)\)( - not instrumented)?$"
)
CONSTRUCT_IDS = [spec.construct_id for spec in FUNCTIONS]


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


@pytest.mark.parametrize("construct_id", CONSTRUCT_IDS)
def test_each_function_runs_in_its_runtime_and_writes_every_key(clean_run: Run, construct_id: str) -> None:
    fr = clean_run.result.function(construct_id)
    assert fr.invoke_errors == []
    assert fr.uploads == UPLOADS
    assert fr.items_in_table == UPLOADS
    assert fr.emitted == UPLOADS * LINES_PER_UPLOAD


def test_runs_the_three_functions_in_their_runtimes(clean_run: Run) -> None:
    runtimes = {fr.construct_id: fr.runtime for fr in clean_run.result.functions}
    assert runtimes == {"TypeScript": "nodejs22.x", "Python": "python3.12", "Go": "provided.al2023"}


@pytest.mark.parametrize("construct_id", CONSTRUCT_IDS)
def test_every_function_is_instrumented_and_delivers_every_line(clean_run: Run, construct_id: str) -> None:
    fr = clean_run.result.function(construct_id)
    assert fr.instrumented, fr.skipped_because
    assert fr.stored == fr.emitted
    assert fr.extension_records == 0  # no drop report, no diagnostics
    assert fr.ok


def test_the_typescript_and_go_extensions_ran_with_no_python_reachable(clean_run: Run) -> None:
    sandboxes = {fr.construct_id: fr.extension_sandbox for fr in clean_run.result.functions}
    assert sandboxes == {"TypeScript": "no-python", "Python": None, "Go": "no-python"}


def test_the_run_is_ok(clean_run: Run) -> None:
    result = clean_run.result
    assert result.ok
    assert result.emitted == result.stored == len(FUNCTIONS) * UPLOADS * LINES_PER_UPLOAD


def test_output_ends_with_one_line_per_function_then_the_total(clean_run: Run) -> None:
    *_, ts, py, go, total = clean_run.output
    for line, fr in zip((ts, py, go), clean_run.result.functions, strict=True):
        match = FUNCTION_SUMMARY.match(line)
        assert match is not None, line
        assert match.group(1) == fr.construct_id
        assert (int(match.group(2)), int(match.group(3))) == (fr.stored, fr.emitted)
        assert match.group(4) == fr.runtime
        assert line.startswith("   " if fr.ok else "!! ")
        assert bool(match.group(5)) == (not fr.instrumented)
    assert [line for line in clean_run.output if SUMMARY.match(line)] == [total]
    match = SUMMARY.match(total)
    assert match is not None
    assert (int(match.group(1)), int(match.group(2))) == (clean_run.result.stored, clean_run.result.emitted)
    assert match.group(3) == clean_run.result.loki_url


def test_skipped_cdk_functions_are_listed_with_their_reason(clean_run: Run) -> None:
    assert any("custom-resource provider" in why for why in clean_run.result.skipped.values())


def test_the_run_leaves_the_staged_assets_as_cdk_wrote_them(clean_run: Run) -> None:
    # The functions ran from cdk.out in place: like Lambda's read-only /var/task, nothing lands there.
    # The only .pyc are the ones the Python layer ships (synth-time, PEP 552 unchecked-hash: flags == 1);
    # one the run wrote would be timestamp-based (flags == 0) or sit outside the layer's package.
    cdk_out = clean_run.work_dir / "cdk.out"
    assert list(cdk_out.glob("asset.*"))
    for pyc in cdk_out.rglob("*.pyc"):
        assert pyc.parent.name == "__pycache__" and pyc.parent.parent.name == "loki_telemetry_extension", pyc
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, pyc
    assert all(cache.parent.name == "loki_telemetry_extension" for cache in cdk_out.rglob("__pycache__"))


def test_lines_are_counted_by_label_set(clean_run: Run) -> None:
    for fr in clean_run.result.functions:
        if not fr.instrumented:
            assert fr.by_labels == {}
            continue
        (key,) = fr.by_labels
        assert f'function="LokiSampleApp-{fr.construct_id}"' in key
        assert 'source="lambda"' in key
        assert 'app="loki-sample"' in key


@pytest.fixture(scope="module")
def strict_receiver() -> Iterator[LokiReceiver]:
    # Rejects lines over 100 bytes with a 400 (as Loki does over max_line_size), storing the rest:
    # every handler's "put_item" and "stored" lines are longer, its "received" lines shorter.
    with LokiReceiver(max_line_size=100) as rx:
        yield rx


def test_lost_lines_are_reported_and_fail_the_run(strict_receiver: LokiReceiver, tmp_path: Path) -> None:
    output: list[str] = []
    result = demo.run(uploads=2, work_dir=tmp_path, receiver=strict_receiver, out=output.append)
    diagnostics = "\n".join([*output, *map(str, strict_receiver.requests)])
    for fr in result.functions:
        assert fr.emitted == 2 * LINES_PER_UPLOAD
        assert 0 < fr.stored < fr.emitted, diagnostics
        assert not fr.ok
        assert (
            f"!! {fr.construct_id}: {fr.lost} of {fr.emitted} function log lines are missing from Loki"
            in output
        )
    assert not result.ok
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
        stored_there = {cid: loki.count(f'{{function="LokiSampleApp-{cid}"}}') for cid in CONSTRUCT_IDS}
    lines = capsys.readouterr().out.splitlines()
    # THEN it shipped there, counted there, and exited 0
    assert code == 0
    assert f"== Loki: {loki.url} (LOKI_URL)" in lines
    assert stored_there == dict.fromkeys(CONSTRUCT_IDS, LINES_PER_UPLOAD)
    total = len(FUNCTIONS) * LINES_PER_UPLOAD
    assert lines[-1] == f"delivered {total}/{total} log lines to Loki at {loki.url}"
