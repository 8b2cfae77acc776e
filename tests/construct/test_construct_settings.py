"""Each option is declared once (``LokiOptions``): signatures, rendering, README table and the
extension's own reading of the environment all agree with that declaration."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration, Size
from loki_telemetry_extension import config

from loki_telemetry_construct import (
    ConfigError,
    LokiLogging,
    LokiOptions,
    options_table_markdown,
    with_loki_logging,
)
from loki_telemetry_construct._contract import envvars
from loki_telemetry_construct.settings import OPTION_NAMES, TelemetryBuffering, env_vars_of
from tests.construct.apps import LOKI_URL, MainApp, Scenarios, env_of

README = Path(__file__).resolve().parents[2] / "README.md"
FAKE_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki/auth-AbCdEf"


@pytest.mark.parametrize(
    "target", [LokiLogging.__init__, with_loki_logging], ids=["LokiLogging", "with_loki_logging"]
)
def test_public_signatures_are_the_declaration(target: Any) -> None:
    params = [
        p for p in inspect.signature(target).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    fields = dataclasses.fields(LokiOptions)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        assert p.default == f.default, p.name
        assert p.annotation == f.type, p.name  # both strings (postponed annotations)


# One valid value per option that writes the environment; adding an option means adding it here.
SAMPLES: dict[str, Any] = {
    "loki_ip": "10.0.0.5",
    "loki_url": LOKI_URL,
    "batch_size": 10,
    "flush_interval": Duration.millis(300),
    "flush": "batch",
    "ship_before_freeze": True,
    "dense_gap": Duration.millis(50),
    "high_water_percent": 75,
    "telemetry_types": ("function", "platform"),
    "buffering": TelemetryBuffering(
        max_items=1000, max_bytes=Size.kibibytes(256), timeout=Duration.millis(25)
    ),
    "labels": {"env": "prod"},
    "tenant_id": "team-a",
    "basic_auth_secret": None,  # needs a construct scope: covered by the representative app
    "bearer_token_secret": None,
    "max_buffer_bytes": Size.mebibytes(1),
    "max_line_bytes": 2048,
}


def test_each_option_writes_exactly_the_variables_it_declares() -> None:
    with_env = [n for n in OPTION_NAMES if env_vars_of(n)]
    assert sorted(SAMPLES) == sorted(with_env)
    base = {"loki_url": LOKI_URL}
    always = set(LokiLogging(**base).settings.environment)  # the endpoint and the batch size
    for name, value in SAMPLES.items():
        if value is None or name in ("loki_ip", "loki_url", "batch_size"):
            continue
        env = LokiLogging(**{**base, name: value}).settings.environment
        assert set(env) - always == set(env_vars_of(name)), name
    assert set(LokiLogging(loki_ip="10.0.0.5").settings.environment) - {envvars.DISPATCH_MIN_BATCH_SIZE} == {
        envvars.LOKI_IP
    }


def test_options_table_has_one_row_per_option_in_declaration_order() -> None:
    rows = options_table_markdown().splitlines()[2:]
    assert [re.match(r"^\| `(\w+)` \|", row).group(1) for row in rows] == list(OPTION_NAMES)  # type: ignore[union-attr]
    assert all(row.count(" | ") == 4 for row in rows)  # five cells: no unescaped "|" in a rule


def _readme_table(header: str) -> list[str]:
    """The README's table that starts with ``header``, row by row ([] when there is none)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    if header not in lines:
        return []
    start = lines.index(header)
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_readme_options_table_is_the_generated_one() -> None:
    # The README's table is the generated one, pasted; after changing an option, paste it again:
    #   python -c "from loki_telemetry_construct import options_table_markdown as t; print(t())"
    generated = options_table_markdown().splitlines()
    assert _readme_table(generated[0]) == generated, (
        "README.md's options table differs from options_table_markdown(): paste its output there"
    )


# -- round trip through the extension's own reader ---------------------------------------------
def _as_deployed(env: dict[str, Any]) -> dict[str, str]:
    """The environment as Lambda passes it: tokens resolved to plausible values."""
    out = {}
    for key, value in env.items():
        if key == envvars.LOKI_BASIC_AUTH_SECRET_ARN:
            value = FAKE_SECRET_ARN  # a {"Ref": ...} to the secret in the template
        assert isinstance(value, str), key
        out[key] = value
    out["AWS_LAMBDA_FUNCTION_NAME"] = "fn"
    return out


def test_representative_environment_round_trips_through_the_extensions_config(
    main: MainApp, main_json: dict[str, Any]
) -> None:
    # GIVEN the environment synthesized for a function with every option set
    env = _as_deployed(env_of(main_json, main.workload.py_x86))
    assert set(envvars.SETTINGS) <= set(env), "the representative app should set every integer variable"
    # WHEN the extension reads it
    cfg = config.load(env)
    # THEN it has nothing to complain about, and reads back what the user asked for
    assert cfg.problems == ()
    got = {name: getattr(cfg, name) for name in EXPECTED_MAIN}
    assert got == EXPECTED_MAIN


#: What the representative app asked for, as the extension's Config spells it.
EXPECTED_MAIN: dict[str, Any] = {
    "url": LOKI_URL,
    "batch_size": 500,
    "flush_interval_s": 2.0,
    "flush_mode": "end_of_invoke",  # ship_before_freeze=True
    "dense_gap_ms": 150,
    "high_water_percent": 60,
    "telemetry_types": ("function", "platform"),
    "buffer_max_items": 2000,
    "buffer_max_bytes": 512 * 1024,
    "buffer_timeout_ms": 250,
    "labels": (("env", "prod"), ("team", "payments")),
    "tenant_id": "team-a",
    "basic_auth_secret_arn": FAKE_SECRET_ARN,
    "bearer_token_secret_arn": None,
    "max_buffer_bytes": 8 * 1024 * 1024,
    "max_line_bytes": 64_000,
}


def test_minimal_environment_round_trips(scenarios: Scenarios, scenario_templates: dict[str, Any]) -> None:
    env = _as_deployed(env_of(scenario_templates["Minimal"], scenarios.fns["min_arm"]))
    cfg = config.load(env)
    assert cfg.problems == ()
    assert cfg.url == f"http://10.0.0.5:{envvars.LOKI_IP_PORT}{envvars.LOKI_PUSH_PATH}"
    assert cfg.batch_size == 10
    assert cfg.flush_mode == envvars.DEFAULT_FLUSH  # nothing written, the extension's default


def _buffering(field: str) -> Callable[[int], TelemetryBuffering]:
    """TelemetryBuffering with one field set from a number (the timeout as milliseconds)."""
    return lambda n: TelemetryBuffering(**{field: Duration.millis(n) if field == "timeout" else n})


#: How a user gives each row of the range table (option, value from a number) and where the
#: extension's Config has it (field, its scale to the variable's unit).
BY_ROW: dict[str, tuple[str, Callable[[int], Any], str, int]] = {
    envvars.DISPATCH_MIN_BATCH_SIZE: ("batch_size", int, "batch_size", 1),
    envvars.LOKI_FLUSH_INTERVAL_MS: ("flush_interval", Duration.millis, "flush_interval_s", 1000),
    envvars.LOKI_DENSE_GAP_MS: ("dense_gap", Duration.millis, "dense_gap_ms", 1),
    envvars.LOKI_HIGH_WATER_PERCENT: ("high_water_percent", int, "high_water_percent", 1),
    envvars.LOKI_MAX_BUFFER_BYTES: ("max_buffer_bytes", Size.bytes, "max_buffer_bytes", 1),
    envvars.LOKI_BUFFER_MAX_ITEMS: ("buffering", _buffering("max_items"), "buffer_max_items", 1),
    envvars.LOKI_BUFFER_MAX_BYTES: ("buffering", _buffering("max_bytes"), "buffer_max_bytes", 1),
    envvars.LOKI_BUFFER_TIMEOUT_MS: ("buffering", _buffering("timeout"), "buffer_timeout_ms", 1),
    envvars.LOKI_MAX_LINE_BYTES: ("max_line_bytes", int, "max_line_bytes", 1),
}


def test_every_row_of_the_range_table_has_its_option() -> None:
    assert list(BY_ROW) == list(envvars.SETTINGS)
    assert all(name in env_vars_of(option) for name, (option, *_) in BY_ROW.items())


@pytest.mark.parametrize("end", ["minimum", "default", "maximum"])
@pytest.mark.parametrize("name", list(envvars.SETTINGS))
def test_every_row_round_trips_at_its_ends(name: str, end: str) -> None:
    # GIVEN an option at one end of (or at the default of) its row of the range table
    option, make, field, scale = BY_ROW[name]
    value = getattr(envvars.SETTINGS[name], end)
    # WHEN the construct writes it and the extension reads it back
    env = LokiLogging(loki_url=LOKI_URL, **{option: make(value)}).settings.environment
    cfg = config.load({**env, "AWS_LAMBDA_FUNCTION_NAME": "fn"})
    # THEN both agree: the same number, nothing to complain about
    assert env[name] == str(value)
    assert cfg.problems == ()
    assert getattr(cfg, field) * scale == value


@pytest.mark.parametrize("name", list(envvars.SETTINGS))
def test_every_row_is_refused_outside_its_range(name: str) -> None:
    option, make, _, _ = BY_ROW[name]
    row = envvars.SETTINGS[name]
    # A Duration or Size cannot be negative: below a minimum of 0 there is nothing to give.
    outside = [row.maximum + 1] + ([row.minimum - 1] if row.minimum > 0 else [])
    for value in outside:
        with pytest.raises(ConfigError, match=rf"from {row.minimum}( ms)? to {row.maximum}\b"):
            LokiLogging(loki_url=LOKI_URL, **{option: make(value)})


@pytest.mark.parametrize("mode", envvars.FLUSH_MODES)
def test_every_flush_mode_round_trips(mode: str) -> None:
    env = dict(LokiLogging(loki_url=LOKI_URL, flush=mode).settings.environment)  # type: ignore[arg-type]
    cfg = config.load({**env, "AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert cfg.problems == ()
    assert cfg.flush_mode == mode


@pytest.mark.parametrize("target", [LokiLogging, with_loki_logging], ids=["LokiLogging", "with_loki_logging"])
def test_every_option_is_documented_in_the_public_docstrings(target: Any) -> None:
    documented = re.findall(r":param (\w+):", target.__doc__ or "")
    assert documented == list(OPTION_NAMES)
