"""The construct writes exactly the environment variables the extension's contract module defines."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import loki_telemetry_construct
from loki_telemetry_construct._contract import envvars
from tests.construct.apps import MainApp, env_of

SRC = Path(loki_telemetry_construct.__file__).parent


def test_every_variable_the_construct_writes_is_in_the_contract(
    main: MainApp, main_json: dict[str, Any]
) -> None:
    # The representative app sets every option except the bearer token (it uses basic auth);
    # ship_before_freeze is written as LOKI_FLUSH, the one variable for the flush mode.
    written = set(env_of(main_json, main.workload.py_x86))
    assert written <= set(envvars.ALL)
    assert set(envvars.ALL) - written == {
        envvars.LOKI_IP,
        envvars.LOKI_BEARER_TOKEN_SECRET_ARN,
        envvars.LOKI_SHIP_BEFORE_FREEZE,
    }


def test_each_option_maps_to_its_variable(main: MainApp, main_json: dict[str, Any]) -> None:
    env = env_of(main_json, main.workload.py_x86)
    v = envvars
    assert env[v.DISPATCH_MIN_BATCH_SIZE] == "500"
    assert env[v.LOKI_FLUSH_INTERVAL_MS] == "2000"
    assert env[v.LOKI_FLUSH] == "end_of_invoke"  # ship_before_freeze=True
    assert env[v.LOKI_DENSE_GAP_MS] == "150"
    assert env[v.LOKI_HIGH_WATER_PERCENT] == "60"
    assert env[v.LOKI_TELEMETRY_TYPES] == "function,platform"
    assert env[v.LOKI_BUFFER_MAX_ITEMS] == "2000"
    assert env[v.LOKI_BUFFER_MAX_BYTES] == str(512 * 1024)
    assert env[v.LOKI_BUFFER_TIMEOUT_MS] == "250"
    assert json.loads(env[v.LOKI_LABELS]) == {"env": "prod", "team": "payments"}
    assert env[v.LOKI_LABELS] == '{"env":"prod","team":"payments"}'  # compact
    assert env[v.LOKI_TENANT_ID] == "team-a"
    assert env[v.LOKI_MAX_BUFFER_BYTES] == str(8 * 1024 * 1024)
    assert env[v.LOKI_MAX_LINE_BYTES] == "64000"


def test_the_extension_reads_the_same_module_the_construct_imports() -> None:
    # The layer the construct ships is the very directory the contract module comes from.
    from loki_telemetry_construct.layer import LAYER_ROOT

    assert Path(envvars.__file__).resolve() == LAYER_ROOT / "loki_telemetry_extension" / "envvars.py"


def test_no_variable_name_is_spelled_out_in_the_construct_source() -> None:
    # Names must come from envvars, never be retyped (a typo would silently break the contract).
    names = set(envvars.ALL)
    offenders = []
    for path in SRC.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                offenders.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert offenders == []
