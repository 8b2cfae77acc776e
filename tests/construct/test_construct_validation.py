"""Every configuration mistake fails at synth time with the option, the value, the rule and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Duration, Size, Stack, Token
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm

from loki_telemetry_construct import ConfigError, LokiLogging, TelemetryBuffering, WarningIds
from loki_telemetry_construct._contract import envvars

URL = "https://loki.example.com/loki/api/v1/push"
LAYER_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:loki:3"


def _labels(n: int) -> dict[str, str]:
    return {f"l{i}": "v" for i in range(n)}


# (case id, kwargs, the option the message must name, a fragment of the rule)
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-endpoint", {}, "loki_ip/loki_url", "exactly one"),
    ("both-endpoints", {"loki_ip": "10.0.0.5", "loki_url": URL}, "loki_ip/loki_url", "both were given"),
    ("url-ftp", {"loki_url": "ftp://loki/loki/api/v1/push"}, "loki_url", "http:// or https://"),
    ("url-no-scheme", {"loki_url": "loki.example.com/loki/api/v1/push"}, "loki_url", "http:// or https://"),
    ("url-spaces", {"loki_url": "https://lo ki/loki/api/v1/push"}, "loki_url", "http:// or https://"),
    ("url-bad-port", {"loki_url": "http://loki:99999/loki/api/v1/push"}, "loki_url", "not a valid URL"),
    ("url-base-only", {"loki_url": "http://loki:3100"}, "loki_url", "full push URL"),
    ("url-not-str", {"loki_url": 42}, "loki_url", "must be a string"),
    ("ip-with-scheme", {"loki_ip": "http://10.0.0.5"}, "loki_ip", "bare host name"),
    ("ip-with-port", {"loki_ip": "10.0.0.5:3100"}, "loki_ip", "bare host name"),
    ("ip-v6", {"loki_ip": "fd00::5"}, "loki_ip", "IPv6"),
    ("ip-empty", {"loki_ip": ""}, "loki_ip", "non-empty"),
    ("batch-zero", {"loki_url": URL, "batch_size": 0}, "batch_size", "from 1 to 10000"),
    ("batch-too-big", {"loki_url": URL, "batch_size": 10_001}, "batch_size", "from 1 to 10000"),
    ("batch-str", {"loki_url": URL, "batch_size": "10"}, "batch_size", "integer"),
    ("batch-bool", {"loki_url": URL, "batch_size": True}, "batch_size", "integer"),
    ("batch-float", {"loki_url": URL, "batch_size": 2.5}, "batch_size", "integer"),
    (
        "flush-zero",
        {"loki_url": URL, "flush_interval": Duration.millis(0)},
        "flush_interval",
        "1 ms to 60000 ms",
    ),
    ("flush-long", {"loki_url": URL, "flush_interval": Duration.minutes(2)}, "flush_interval", "60000 ms"),
    ("flush-not-duration", {"loki_url": URL, "flush_interval": 1000}, "flush_interval", "Duration"),
    ("types-unknown", {"loki_url": URL, "telemetry_types": ("functions",)}, "telemetry_types", "unknown"),
    ("types-empty", {"loki_url": URL, "telemetry_types": ()}, "telemetry_types", "non-empty subset"),
    ("types-str", {"loki_url": URL, "telemetry_types": "function"}, "telemetry_types", "sequence"),
    (
        "buffer-items-low",
        {"loki_url": URL, "buffering": TelemetryBuffering(max_items=999)},
        "buffering.max_items",
        "from 1000 to 10000",
    ),
    (
        "buffer-items-high",
        {"loki_url": URL, "buffering": TelemetryBuffering(max_items=10_001)},
        "buffering.max_items",
        "from 1000 to 10000",
    ),
    (
        "buffer-bytes-low",
        {"loki_url": URL, "buffering": TelemetryBuffering(max_bytes=1000)},
        "buffering.max_bytes",
        "from 262144 to 1048576",
    ),
    (
        "buffer-bytes-high",
        {"loki_url": URL, "buffering": TelemetryBuffering(max_bytes=Size.mebibytes(2))},
        "buffering.max_bytes",
        "from 262144 to 1048576",
    ),
    (
        "buffer-timeout-low",
        {"loki_url": URL, "buffering": TelemetryBuffering(timeout=Duration.millis(24))},
        "buffering.timeout",
        "25 ms to 30000 ms",
    ),
    (
        "buffer-timeout-high",
        {"loki_url": URL, "buffering": TelemetryBuffering(timeout=Duration.seconds(31))},
        "buffering.timeout",
        "25 ms to 30000 ms",
    ),
    ("buffer-dict", {"loki_url": URL, "buffering": {"max_items": 1000}}, "buffering", "TelemetryBuffering"),
    ("label-digit", {"loki_url": URL, "labels": {"1env": "x"}}, "labels", "must match"),
    ("label-dash", {"loki_url": URL, "labels": {"team-name": "x"}}, "labels", "must match"),
    ("label-dunder", {"loki_url": URL, "labels": {"__name": "x"}}, "labels", "start with '__'"),
    ("label-reserved", {"loki_url": URL, "labels": {"function": "x"}}, "labels", "set by the extension"),
    ("label-empty-value", {"loki_url": URL, "labels": {"env": ""}}, "labels", "non-empty strings"),
    ("label-too-many", {"loki_url": URL, "labels": _labels(13)}, "labels", "at most 12 static labels"),
    ("label-not-mapping", {"loki_url": URL, "labels": ["env"]}, "labels", "mapping"),
    ("tenant-space", {"loki_url": URL, "tenant_id": "team a"}, "tenant_id", "1-150 characters"),
    ("tenant-long", {"loki_url": URL, "tenant_id": "a" * 151}, "tenant_id", "1-150 characters"),
    ("tenant-dotdot", {"loki_url": URL, "tenant_id": ".."}, "tenant_id", "not '.' or '..'"),
    (
        "secret-string",
        {"loki_url": URL, "basic_auth_secret": "arn:aws:secretsmanager:x"},
        "basic_auth_secret",
        "ISecret",
    ),
    ("bearer-string", {"loki_url": URL, "bearer_token_secret": "token"}, "bearer_token_secret", "ISecret"),
    ("buffer-mem-low", {"loki_url": URL, "max_buffer_bytes": 1024}, "max_buffer_bytes", "from 65536"),
    (
        "buffer-mem-high",
        {"loki_url": URL, "max_buffer_bytes": Size.gibibytes(1)},
        "max_buffer_bytes",
        "268435456",
    ),
    ("line-low", {"loki_url": URL, "max_line_bytes": 100}, "max_line_bytes", "from 1024 to 256000"),
    ("line-high", {"loki_url": URL, "max_line_bytes": 300_000}, "max_line_bytes", "from 1024 to 256000"),
    ("freeze-str", {"loki_url": URL, "ship_before_freeze": "yes"}, "ship_before_freeze", "bool"),
    ("deny-int", {"loki_url": URL, "disable_cloudwatch_logs": 1}, "disable_cloudwatch_logs", "bool"),
    ("include-str", {"loki_url": URL, "include": "MyFunction"}, "include", "list of constructs"),
    ("exclude-int", {"loki_url": URL, "exclude": [42]}, "exclude", "construct"),
    ("layer-not-arn", {"loki_url": URL, "layer": "my-layer"}, "layer", "layer *version* ARN"),
    (
        "layer-arn-no-version",
        {"loki_url": URL, "layer": "arn:aws:lambda:eu-west-1:123456789012:layer:loki"},
        "layer",
        "layer *version* ARN",
    ),
    ("layer-object", {"loki_url": URL, "layer": object()}, "layer", "ILayerVersion"),
    ("flush-unknown", {"loki_url": URL, "flush": "eager"}, "flush", "one of 'adaptive', 'end_of_invoke'"),
    (
        "flush-and-freeze",
        {"loki_url": URL, "flush": "batch", "ship_before_freeze": True},
        "flush/ship_before_freeze",
        "only one of them",
    ),
    ("dense-gap-int", {"loki_url": URL, "dense_gap": 200}, "dense_gap", "must be an aws_cdk.Duration"),
    ("dense-gap-long", {"loki_url": URL, "dense_gap": Duration.minutes(2)}, "dense_gap", "0 ms to 60000 ms"),
    ("high-water-zero", {"loki_url": URL, "high_water_percent": 0}, "high_water_percent", "from 1 to 100"),
    ("high-water-101", {"loki_url": URL, "high_water_percent": 101}, "high_water_percent", "from 1 to 100"),
    (
        "layer-with-native",
        {"loki_url": URL, "extension": "native", "layer": LAYER_ARN},
        "layer/extension",
        "would never be used",
    ),
    (
        "native-layers-key",
        {"loki_url": URL, "native_layers": {"amd64": LAYER_ARN}},
        "native_layers",
        "x86_64",
    ),
    (
        "native-layers-arn",
        {"loki_url": URL, "native_layers": {"arm64": "my-layer"}},
        "native_layers['arm64']",
        "layer *version* ARN",
    ),
    ("native-layers-list", {"loki_url": URL, "native_layers": [LAYER_ARN]}, "native_layers", "mapping"),
    (
        "native-layers-python-only",
        {"loki_url": URL, "extension": "python", "native_layers": {"x86_64": LAYER_ARN}},
        "native_layers/extension",
        "never be used",
    ),
    ("extension-unknown", {"loki_url": URL, "extension": "go"}, "extension", "one of 'auto', 'python'"),
]


@pytest.mark.parametrize(("kwargs", "option", "rule"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_option_fails_naming_option_value_rule_and_fix(
    kwargs: dict[str, Any], option: str, rule: str
) -> None:
    with pytest.raises(ConfigError) as info:
        LokiLogging(**kwargs)
    message = str(info.value)
    assert f"{option}=" in message
    assert rule in message
    assert "Fix: " in message


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_credentials_in_url_are_rejected_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        LokiLogging(loki_url="https://me:hunter2@loki.example.com/loki/api/v1/push")
    assert "hunter2" not in str(info.value)
    assert "basic_auth_secret" in str(info.value)


def test_base_url_error_suggests_the_push_url() -> None:
    with pytest.raises(ConfigError, match="use 'http://loki:3100/loki/api/v1/push'"):
        LokiLogging(loki_url="http://loki:3100/")


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack(App(), "Validation")


def test_basic_auth_and_bearer_token_together_are_rejected(stack: Stack) -> None:
    a = secretsmanager.Secret.from_secret_name_v2(stack, "A", "a")
    b = secretsmanager.Secret.from_secret_name_v2(stack, "B", "b")
    with pytest.raises(ConfigError, match=r"basic_auth_secret/bearer_token_secret=.*not both"):
        LokiLogging(loki_url=URL, basic_auth_secret=a, bearer_token_secret=b)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loki_ip": "10.0.0.5", "batch_size": envvars.SETTINGS[envvars.DISPATCH_MIN_BATCH_SIZE].minimum},
        {"loki_ip": "loki.internal", "batch_size": envvars.SETTINGS[envvars.DISPATCH_MIN_BATCH_SIZE].maximum},
        {"loki_url": "http://[fd00::5]:3100/loki/api/v1/push"},
        {"loki_url": URL, "labels": _labels(envvars.MAX_LABELS - len(envvars.RESERVED_LABELS))},
        {"loki_url": URL, "flush_interval": Duration.seconds(60), "tenant_id": "a" * 150},
        {
            "loki_url": URL,
            "buffering": TelemetryBuffering(
                max_items=envvars.SETTINGS[envvars.LOKI_BUFFER_MAX_ITEMS].minimum,
                max_bytes=envvars.SETTINGS[envvars.LOKI_BUFFER_MAX_BYTES].maximum,
                timeout=Duration.millis(envvars.SETTINGS[envvars.LOKI_BUFFER_TIMEOUT_MS].minimum),
            ),
        },
        {"loki_url": URL, "telemetry_types": ("function", "platform", "extension")},
        {
            "loki_url": URL,
            "max_buffer_bytes": Size.kibibytes(64),
            "max_line_bytes": envvars.SETTINGS[envvars.LOKI_MAX_LINE_BYTES].maximum,
        },
        {"loki_url": URL, "layer": "arn:aws-cn:lambda:cn-north-1:123456789012:layer:loki:12"},
    ],
)
def test_boundary_values_are_accepted(kwargs: dict[str, Any]) -> None:
    LokiLogging(**kwargs)


def test_tokens_skip_validation() -> None:
    # Deploy-time values cannot be checked at synth time; they pass through as tokens.
    aspect = LokiLogging(
        loki_url=Token.as_string({"Ref": "Url"}),
        batch_size=Token.as_number({"Ref": "Batch"}),
        tenant_id=Token.as_string({"Ref": "Tenant"}),
        labels={"env": Token.as_string({"Ref": "Env"})},
    )
    env = aspect.settings.environment
    assert Token.is_unresolved(env[envvars.LOKI_URL])
    assert Token.is_unresolved(env[envvars.DISPATCH_MIN_BATCH_SIZE])
    assert Token.is_unresolved(env[envvars.LOKI_TENANT_ID])


def test_flush_is_written_only_when_given() -> None:
    # The extension's default (adaptive) needs no variable; a given value is written, even the default.
    assert envvars.LOKI_FLUSH not in LokiLogging(loki_url=URL).settings.environment
    for mode in envvars.FLUSH_MODES:
        assert LokiLogging(loki_url=URL, flush=mode).settings.environment[envvars.LOKI_FLUSH] == mode  # type: ignore[arg-type]


@pytest.mark.parametrize(("freeze", "mode"), [(True, "end_of_invoke"), (False, "batch")])
def test_ship_before_freeze_keeps_working_as_its_flush_mode(freeze: bool, mode: str) -> None:
    env = LokiLogging(loki_url=URL, ship_before_freeze=freeze).settings.environment
    assert env[envvars.LOKI_FLUSH] == mode
    assert envvars.LOKI_SHIP_BEFORE_FREEZE not in env


def test_dense_gap_and_high_water_map_to_their_variables() -> None:
    env = LokiLogging(loki_url=URL, dense_gap=Duration.millis(0), high_water_percent=100).settings.environment
    assert env[envvars.LOKI_DENSE_GAP_MS] == "0"
    assert env[envvars.LOKI_HIGH_WATER_PERCENT] == "100"


# -- credentials travel over https only ------------------------------------------------------------
@pytest.mark.parametrize(
    "endpoint",
    [
        {"loki_url": "http://loki.example.com/loki/api/v1/push"},
        {"loki_url": "http://10.0.0.5:3100/loki/api/v1/push"},
        {"loki_ip": "10.0.0.5"},
        {"loki_ip": "loki.internal"},
    ],
)
def test_credentials_with_an_http_url_fail_at_synth(stack: Stack, endpoint: dict[str, str]) -> None:
    secret = secretsmanager.Secret.from_secret_name_v2(
        stack, f"Http{len(endpoint)}{hash(str(endpoint))}", "a"
    )
    with pytest.raises(ConfigError) as info:
        LokiLogging(basic_auth_secret=secret, **endpoint)  # type: ignore[arg-type]
    message = str(info.value)
    assert "basic_auth_secret/" in message
    assert "cleartext" in message
    assert "127.0.0.0/8, localhost, ::1" in message  # says which hosts plain http is allowed to
    assert "Fix: " in message


@pytest.mark.parametrize(
    "endpoint",
    [
        {"loki_url": "http://127.0.0.1:3100/loki/api/v1/push"},
        {"loki_url": "http://127.8.9.10:3100/loki/api/v1/push"},
        {"loki_url": "http://localhost:3100/loki/api/v1/push"},
        {"loki_url": "http://[::1]:3100/loki/api/v1/push"},
        {"loki_ip": "127.0.0.1"},
        {"loki_ip": "localhost"},
        {"loki_url": URL},
    ],
)
def test_credentials_over_loopback_http_or_https_are_accepted(stack: Stack, endpoint: dict[str, str]) -> None:
    token = ssm.StringParameter.from_secure_string_parameter_attributes(
        stack, f"Ok{abs(hash(str(endpoint)))}", parameter_name="/loki/token"
    )
    LokiLogging(bearer_token_secret=token, **endpoint)  # type: ignore[arg-type]


def test_http_without_credentials_is_fine() -> None:
    LokiLogging(loki_url="http://loki.example.com:3100/loki/api/v1/push")


# -- messages ----------------------------------------------------------------------------------------
def test_secret_arn_string_suggests_from_secret_complete_arn() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki/auth-AbCdEf"
    with pytest.raises(ConfigError, match=r"Secret\.from_secret_complete_arn") as info:
        LokiLogging(loki_url=URL, basic_auth_secret=arn)  # type: ignore[arg-type]
    assert "from_secret_name_v2" not in str(info.value)


def test_duration_message_reads_an_aws_cdk_duration() -> None:
    with pytest.raises(ConfigError, match=r"must be an aws_cdk\.Duration"):
        LokiLogging(loki_url=URL, flush_interval=1000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("https://logs.example.com/loki", True),
        ("https://logs.example.com/push", True),
        ("https://logs.example.com/loki/api/v1/push", False),
        ("https://logs.example.com/loki/api/v1/push/", False),
        ("https://logs.example.com/api/prom/push", False),
    ],
)
def test_unusual_push_path_is_a_notice_with_an_ack_id(url: str, warned: bool) -> None:
    notices = LokiLogging(loki_url=url).settings.notices
    assert [n[0] for n in notices] == ([WarningIds.UNUSUAL_PUSH_PATH] if warned else [])
