"""Both builds read the environment the same way and say the same thing about bad values.

The Python build's answers for CASES are committed as Go test data
(extension/native/internal/ext/testdata/config_parity.json); the Go test
TestConfigParityWithPythonBuild checks the native build against them, and this test fails
when the Python build's answers changed without the data being regenerated:

    .venv/bin/python tests/extension_native/test_config_parity.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "extension" / "native" / "internal" / "ext" / "testdata" / "config_parity.json"
URL = "http://loki:3100"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki-AbCdEf"
MI = {"AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances"}
BAD_LABELS = '{"env":"prod","9x":"a","source":"s","n":1.5,"b":true,"l":[1],"__x":"y","e":""}'

CASES: list[dict[str, str]] = [
    {},
    {"LOKI_URL": URL},
    {"LOKI_IP": "10.0.0.1"},
    {"LOKI_IP": "fd00::1"},
    {"LOKI_URL": URL, "LOKI_IP": "10.0.0.1"},
    {"LOKI_URL": "ftp://x"},
    {"LOKI_URL": "not a url at all"},
    {"LOKI_URL": "https://user:pw@logs.example.com"},
    {"LOKI_IP": "a b"},
    {"LOKI_URL": URL, "DISPATCH_MIN_BATCH_SIZE": "abc"},
    {"LOKI_URL": URL, "DISPATCH_MIN_BATCH_SIZE": "0"},
    {"LOKI_URL": URL, "DISPATCH_MIN_BATCH_SIZE": " 20 "},
    {"LOKI_URL": URL, "LOKI_FLUSH_INTERVAL_MS": "1e3"},
    {"LOKI_URL": URL, "LOKI_MAX_BUFFER_BYTES": "1_000_000"},
    {"LOKI_URL": URL, "LOKI_MAX_BUFFER_BYTES": "1"},
    {"LOKI_URL": URL, "LOKI_BUFFER_TIMEOUT_MS": "it's"},
    {"LOKI_URL": URL, "LOKI_BUFFER_MAX_ITEMS": "999"},
    {"LOKI_URL": URL, "LOKI_BUFFER_MAX_BYTES": "2000000"},
    {"LOKI_URL": URL, "LOKI_MAX_LINE_BYTES": "-5"},
    {"LOKI_URL": URL, "LOKI_DENSE_GAP_MS": "x", "LOKI_HIGH_WATER_PERCENT": "0"},
    {"LOKI_URL": URL, "LOKI_DENSE_GAP_MS": "0"},
    {"LOKI_URL": URL, "LOKI_FLUSH": "nope"},
    {"LOKI_URL": URL, "LOKI_FLUSH": " END_OF_INVOKE "},
    {"LOKI_URL": URL, "LOKI_FLUSH": "batch", "LOKI_SHIP_BEFORE_FREEZE": "true"},
    {"LOKI_URL": URL, "LOKI_SHIP_BEFORE_FREEZE": "true"},
    {"LOKI_URL": URL, "LOKI_SHIP_BEFORE_FREEZE": "false"},
    {"LOKI_URL": URL, "LOKI_SHIP_BEFORE_FREEZE": "  "},
    {"LOKI_URL": URL, "LOKI_SHIP_BEFORE_FREEZE": "maybe"},
    {"LOKI_URL": URL, "LOKI_SHIP_BEFORE_FREEZE": "true", "LOKI_BUFFER_TIMEOUT_MS": "300"},
    {"LOKI_URL": URL, "LOKI_FLUSH": "end_of_invoke", **MI},
    {"LOKI_URL": URL, "LOKI_FLUSH": "adaptive", **MI},
    {"LOKI_URL": URL, "LOKI_TELEMETRY_TYPES": "function,bogus"},
    {"LOKI_URL": URL, "LOKI_TELEMETRY_TYPES": "nope"},
    {"LOKI_URL": URL, "LOKI_TELEMETRY_TYPES": " Platform , function,platform"},
    {"LOKI_URL": URL, "LOKI_LABELS": "[1]"},
    {"LOKI_URL": URL, "LOKI_LABELS": "{bad json"},
    {"LOKI_URL": URL, "LOKI_LABELS": BAD_LABELS},
    {"LOKI_URL": URL, "LOKI_LABELS": json.dumps({f"l{i}": "v" for i in range(14)})},
    {"LOKI_URL": URL, "LOKI_BASIC_AUTH_SECRET_ARN": "arn:aws:s3:::x"},
    {"LOKI_URL": "https://logs.example.com", "LOKI_BASIC_AUTH_SECRET_ARN": ARN,
     "LOKI_BEARER_TOKEN_SECRET_ARN": ARN},
    {"LOKI_URL": "http://logs.example.com:3100", "LOKI_BEARER_TOKEN_SECRET_ARN": ARN},
    {"LOKI_URL": "http://127.0.0.1:3100", "LOKI_BEARER_TOKEN_SECRET_ARN": ARN},
    {"LOKI_URL": "http://localhost:3100", "LOKI_BEARER_TOKEN_SECRET_ARN": ARN},
    {"LOKI_URL": "http://[::1]:3100", "LOKI_BEARER_TOKEN_SECRET_ARN": ARN},
    {"LOKI_IP": "10.1.2.3", "LOKI_BASIC_AUTH_SECRET_ARN": ARN},
    {"LOKI_URL": URL, "LOKI_TENANT_ID": "a\nb"},
    {"LOKI_URL": URL, "LOKI_TENANT_ID": " team-a "},
]


def python_answers() -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO / "extension" / "python"))
    from loki_telemetry_extension import config

    out = []
    for env in CASES:
        cfg = config.load(env)
        out.append({
            "env": env,
            "url": cfg.url or "",
            "flush": cfg.flush_mode,
            "buffer_timeout_ms": cfg.buffer_timeout_ms,
            "batch_size": cfg.batch_size,
            "max_buffer_bytes": cfg.max_buffer_bytes,
            "telemetry_types": list(cfg.telemetry_types),
            "labels": [list(kv) for kv in cfg.labels],
            "tenant_id": cfg.tenant_id or "",
            "problems": list(cfg.problems),
        })
    return out


def render() -> str:
    return json.dumps(python_answers(), indent=1, ensure_ascii=False) + "\n"


def test_go_test_data_holds_the_python_builds_current_answers() -> None:
    assert DATA.read_text(encoding="utf-8") == render(), (
        "the Python build's config answers changed: run "
        "`.venv/bin/python tests/extension_native/test_config_parity.py`, then `make test-native`"
    )


if __name__ == "__main__":
    DATA.write_text(render(), encoding="utf-8")
