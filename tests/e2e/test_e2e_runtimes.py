"""Functions that are not Python: a Node.js 22 function and a Go function on
``provided.al2023``, with the native build's layer (the only one that can run where there
is no Python interpreter). Every line reaches Loki exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from harness._shared.gobuild import go_build
from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    FUNCTIONS_DIR,
    assert_healthy_extension,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    burst_lines,
    function_entries,
    invoke_ok,
    loki_env,
    native_missing_reason,
)

pytestmark = pytest.mark.native_build_only("a Node.js or provided.* function has no Python interpreter")

def test_native_build_is_tested() -> None:
    """The one line that says why the [native] tests do not run (they are deselected)."""
    reason = native_missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def go_function(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go function's code folder: its static ``bootstrap``, built once per session."""
    code = tmp_path_factory.mktemp("go-function")
    go_build(FUNCTIONS_DIR / "go", code / "bootstrap")
    return code


def _node_message(line: str) -> str:
    """console.log in Text format: ``<ISO time>\\t<request id>\\t<LEVEL>\\t<message>``."""
    parts = line.split("\t", 3)
    return parts[3] if len(parts) == 4 else line


def test_nodejs_function_every_line_stored_once(
    make_emulator: MakeEmulator, receiver: Any, build: Any
) -> None:
    name = f"e2e-node-{build.id}"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "40"}),
        function_name=name,
        runtime="nodejs22.x",
        handler="index.handler",
        code_dir=FUNCTIONS_DIR / "node",
    )
    budget = batch_budget()
    logged: list[str] = []
    raw: list[str] = []
    request_ids = {}
    for i in range(8):
        steps: list[dict[str, Any]] = [
            {"burst": {"prefix": f"nd{i}", "count": 150, "width": 40}},
            {"print": [f"node ✓ ünïcödé {i}"]},
            {"stderr": [f"node error {i}"]},
            {"stdout": [f"raw stdout {i}"]},
        ]
        result = budget.add(invoke_ok(emulator, steps))
        ours = [*burst_lines(f"nd{i}", 150, 40), f"node ✓ ünïcödé {i}", f"node error {i}"]
        logged += ours
        request_ids.update(dict.fromkeys(ours, result.request_id))
        raw.append(f"raw stdout {i}")
    shutdown = emulator.shutdown()
    assert_healthy_extension(emulator, shutdown)
    budget.check()

    entries = function_entries(receiver, name)
    console = [e.line for e in entries if e.line.count("\t") >= 3]
    assert_same_lines([_node_message(ln) for ln in console], logged, "console lines")
    assert_same_lines([e.line for e in entries if e.line.count("\t") < 3], raw, "raw stdout lines")
    # Each console line keeps the request id of the invoke that wrote it.
    for line in console:
        assert line.split("\t")[1] == request_ids[_node_message(line)], line
    assert_no_resent_entries(receiver)


def test_go_function_on_provided_al2023_every_line_stored_once(
    make_emulator: MakeEmulator, receiver: Any, build: Any, go_function: Path
) -> None:
    name = f"e2e-go-{build.id}"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "100"}),
        function_name=name,
        runtime="provided.al2023",
        handler="bootstrap",
        code_dir=go_function,
    )
    budget = batch_budget()
    expected: list[str] = []
    for i in range(10):
        steps: list[dict[str, Any]] = [
            {"burst": {"prefix": f"go{i}", "count": 120, "width": 50}},
            {"print": [f"go ✓ ünïcödé {i}"]},
            {"stderr": [f"go stderr {i}"]},
        ]
        budget.add(invoke_ok(emulator, steps))
        expected += [*burst_lines(f"go{i}", 120, 50), f"go ✓ ünïcödé {i}", f"go stderr {i}"]
    shutdown = emulator.shutdown()
    assert_healthy_extension(emulator, shutdown)
    budget.check()
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, "Go function")
    assert_no_resent_entries(receiver)
