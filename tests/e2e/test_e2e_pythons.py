"""The extension on every Lambda Python runtime available here (3.10-3.13 under
pyenv): one representative end-to-end run each, with the interpreter checked."""

from __future__ import annotations

import os
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_healthy_extension,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    burst_lines,
    extension_pids,
    function_entries,
    invoke_ok,
    loki_env,
    message_of,
    print_records,
    pyenv_pythons,
)

PYTHONS = pyenv_pythons()


def test_pyenv_has_the_lambda_pythons() -> None:
    """Say loudly when a runtime cannot be covered instead of silently testing fewer."""
    found = {os.path.basename(os.path.dirname(os.path.dirname(p)))[:4] for p in PYTHONS}
    assert found >= {"3.10", "3.11", "3.12", "3.13"}, f"pyenv has only {sorted(found)}"


@pytest.mark.python_build_only("the interpreter under test is the extension's own; the native build has none")
@pytest.mark.parametrize("python", PYTHONS, ids=[p.split("/")[-3] for p in PYTHONS])
def test_representative_run_on_each_python(make_emulator: MakeEmulator, receiver: Any, python: str) -> None:
    version = python.split("/")[-3]
    name = f"e2e-py{version.replace('.', '')}"
    emulator = make_emulator(
        loki_env(
            receiver,
            flush="batch",
            **{envvars.DISPATCH_MIN_BATCH_SIZE: "30", envvars.LOKI_LABELS: '{"env": "e2e"}'},
        ),
        function_name=name,
        log_format="JSON",
        extension_python=python,
    )
    # The extension really runs on the requested interpreter.
    exes = {os.path.realpath(f"/proc/{pid}/exe") for pid in extension_pids(emulator)}
    assert exes == {os.path.realpath(python)}, exes

    budget = batch_budget()
    expected: list[str] = []
    for i in range(10):
        steps: list[dict[str, Any]] = [
            {"burst": {"prefix": f"py{i}", "count": 20, "width": 30}},
            {"print": ["multi\nline ü"]},
            {"log": [f"logged {i} ✓"], "level": "INFO"},
        ]
        budget.add(invoke_ok(emulator, steps))
        expected.extend([*burst_lines(f"py{i}", 20, 30), *print_records(["multi\nline ü"]), f"logged {i} ✓"])
    shutdown = emulator.shutdown()
    assert_healthy_extension(emulator, shutdown)
    budget.check()
    entries = function_entries(receiver, name)
    assert_same_lines([message_of(e.line) for e in entries], expected, f"Python {version}")
    assert all(e.labels.get("env") == "e2e" for e in entries)
    assert_no_resent_entries(receiver)
