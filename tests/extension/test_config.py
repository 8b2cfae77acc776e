"""config.load: every variable, every bad value → message naming it + safe default; never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loki_telemetry_extension import envvars as ev
from loki_telemetry_extension.config import Config, load

URL = "http://loki.example:3100/loki/api/v1/push"


def test_defaults_with_only_a_url() -> None:
    cfg = load({ev.LOKI_URL: URL, "AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert cfg.problems == ()
    assert cfg == Config(url=URL, function_name="fn")
    assert cfg.batch_size == ev.SETTINGS[ev.DISPATCH_MIN_BATCH_SIZE].default
    assert cfg.telemetry_types == ("function",)
    assert cfg.flush_mode == "adaptive" and cfg.managed_instances is False
    assert cfg.dense_gap_ms == ev.SETTINGS[ev.LOKI_DENSE_GAP_MS].default
    assert cfg.high_water_percent == ev.SETTINGS[ev.LOKI_HIGH_WATER_PERCENT].default
    # adaptive waits for runtimeDone, which the Telemetry API holds back up to timeoutMs: the minimum
    assert cfg.buffer_timeout_ms == ev.SETTINGS[ev.LOKI_BUFFER_TIMEOUT_MS].minimum


def test_loki_ip_means_port_3100_push_path() -> None:
    assert load({ev.LOKI_IP: "10.0.0.5"}).url == "http://10.0.0.5:3100/loki/api/v1/push"


def test_loki_ip_ipv6_is_bracketed() -> None:
    assert load({ev.LOKI_IP: "fd00::5"}).url == "http://[fd00::5]:3100/loki/api/v1/push"


def test_url_without_path_gets_push_path() -> None:
    assert load({ev.LOKI_URL: "https://logs.example"}).url == "https://logs.example/loki/api/v1/push"


def test_both_url_and_ip_prefers_url_and_says_so() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_IP: "10.0.0.5"})
    assert cfg.url == URL
    assert any("both LOKI_URL and LOKI_IP" in p for p in cfg.problems)


def test_no_endpoint_is_reported_and_url_is_none() -> None:
    cfg = load({})
    assert cfg.url is None
    assert cfg.problems == (
        "no Loki endpoint: set LOKI_URL (full push URL) or LOKI_IP; logs will not be shipped",
    )


@pytest.mark.parametrize("bad", ["ftp://x/y", "loki:3100", "http://", "http:// spaced/x", "://x"])
def test_bad_url_is_reported(bad: str) -> None:
    cfg = load({ev.LOKI_URL: bad})
    assert cfg.url is None
    assert any(p.startswith("LOKI_URL must be an http:// or https:// URL") for p in cfg.problems)


@pytest.mark.parametrize("bad", ["10.0.0.5/x", "a b", "user@host"])
def test_bad_ip_is_reported(bad: str) -> None:
    cfg = load({ev.LOKI_IP: bad})
    assert cfg.url is None
    assert any(p.startswith("LOKI_IP must be a host name") for p in cfg.problems)


#: The Config field each row of the range table (ev.SETTINGS) sets, and its scale to the variable's.
FIELD_OF: dict[str, tuple[str, int]] = {
    ev.DISPATCH_MIN_BATCH_SIZE: ("batch_size", 1),
    ev.LOKI_FLUSH_INTERVAL_MS: ("flush_interval_s", 1000),
    ev.LOKI_DENSE_GAP_MS: ("dense_gap_ms", 1),
    ev.LOKI_HIGH_WATER_PERCENT: ("high_water_percent", 1),
    ev.LOKI_MAX_BUFFER_BYTES: ("max_buffer_bytes", 1),
    ev.LOKI_BUFFER_MAX_ITEMS: ("buffer_max_items", 1),
    ev.LOKI_BUFFER_MAX_BYTES: ("buffer_max_bytes", 1),
    ev.LOKI_BUFFER_TIMEOUT_MS: ("buffer_timeout_ms", 1),
    ev.LOKI_MAX_LINE_BYTES: ("max_line_bytes", 1),
}


def _read(cfg: Config, name: str) -> float:
    attr, scale = FIELD_OF[name]
    return float(getattr(cfg, attr)) * scale


def _default(name: str) -> int:
    setting = ev.SETTINGS[name]
    # adaptive (the default mode) waits for runtimeDone, so the smallest Telemetry API timeout
    return setting.minimum if name == ev.LOKI_BUFFER_TIMEOUT_MS else setting.default


def test_every_row_of_the_range_table_is_tested() -> None:
    assert list(FIELD_OF) == list(ev.SETTINGS)


@pytest.mark.parametrize("name", list(ev.SETTINGS))
def test_range_table_rows_are_consistent(name: str) -> None:
    s = ev.SETTINGS[name]
    assert s.name == name and name in ev.ALL
    assert s.minimum <= s.default <= s.maximum
    assert s.unit in ("entries", "ms", "percent", "bytes", "items")
    with pytest.raises(AttributeError):
        s.default = 0


@pytest.mark.parametrize("name", list(ev.SETTINGS))
def test_unset_integers_are_the_tables_default(name: str) -> None:
    assert _read(load({ev.LOKI_URL: URL}), name) == _default(name)


@pytest.mark.parametrize("name", list(ev.SETTINGS))
def test_integer_bounds_are_accepted(name: str) -> None:
    s = ev.SETTINGS[name]
    for good in (s.minimum, s.maximum):
        cfg = load({ev.LOKI_URL: URL, name: f" {good} "})
        assert _read(cfg, name) == good
        assert cfg.problems == ()


@pytest.mark.parametrize("name", list(ev.SETTINGS))
@pytest.mark.parametrize("kind", ["below", "above", "text", "float"])
def test_bad_integers_fall_back_with_a_message(name: str, kind: str) -> None:
    lo, hi, default = ev.SETTINGS[name].minimum, ev.SETTINGS[name].maximum, _default(name)
    raw = {"below": str(lo - 1), "above": str(hi + 1), "text": "abc", "float": "1.5"}[kind]
    cfg = load({ev.LOKI_URL: URL, name: raw})
    assert _read(cfg, name) == default
    assert cfg.problems == (f"{name} must be an integer from {lo} to {hi}, got {raw!r}; using {default}",)


def test_unset_batch_size_is_the_default_not_a_crash() -> None:
    # AWS's sample crashes on int(os.getenv(...)) when the variable is unset.
    assert load({ev.LOKI_URL: URL, ev.DISPATCH_MIN_BATCH_SIZE: ""}).batch_size == _default(
        ev.DISPATCH_MIN_BATCH_SIZE
    )


def test_flush_interval_is_seconds() -> None:
    assert load({ev.LOKI_URL: URL, ev.LOKI_FLUSH_INTERVAL_MS: "250"}).flush_interval_s == 0.25
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_FLUSH_INTERVAL_MS: "0"})
    assert cfg.flush_interval_s == ev.SETTINGS[ev.LOKI_FLUSH_INTERVAL_MS].default / 1000
    assert "LOKI_FLUSH_INTERVAL_MS must be an integer from 1 to 60000" in cfg.problems[0]


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("true", "end_of_invoke"),
        ("TRUE", "end_of_invoke"),
        ("1", "end_of_invoke"),
        ("yes", "end_of_invoke"),
        ("false", "batch"),
        ("0", "batch"),
        ("no", "batch"),
        ("", "adaptive"),  # empty counts as unset
        (" ", "adaptive"),
    ],
)
def test_legacy_ship_before_freeze_picks_the_mode_when_flush_is_unset(raw: str, mode: str) -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_SHIP_BEFORE_FREEZE: raw})
    assert cfg.flush_mode == mode and cfg.problems == ()


@pytest.mark.parametrize("mode", ev.FLUSH_MODES)
@pytest.mark.parametrize("legacy", [None, "true", "false"])
def test_flush_wins_over_the_legacy_switch(mode: str, legacy: str | None) -> None:
    env = {ev.LOKI_URL: URL, ev.LOKI_FLUSH: f" {mode.upper()} "}
    if legacy is not None:
        env[ev.LOKI_SHIP_BEFORE_FREEZE] = legacy
    cfg = load(env)
    assert cfg.flush_mode == mode and cfg.problems == ()


def test_bad_flush_mode_falls_back_to_adaptive() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_FLUSH: "sometimes", ev.LOKI_SHIP_BEFORE_FREEZE: "false"})
    assert cfg.flush_mode == "adaptive"
    assert cfg.problems == ("LOKI_FLUSH must be one of adaptive, end_of_invoke, batch, got 'sometimes'; "
                            "using adaptive",)


def test_bad_boolean_falls_back() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_SHIP_BEFORE_FREEZE: "maybe"})
    assert cfg.flush_mode == "batch"
    assert cfg.problems == ("LOKI_SHIP_BEFORE_FREEZE must be true or false, got 'maybe'; using false",)


@pytest.mark.parametrize(("mode", "timeout"), [("adaptive", 25), ("end_of_invoke", 25), ("batch", 100)])
def test_telemetry_timeout_default_follows_the_mode_and_an_explicit_value_wins(
    mode: str, timeout: int
) -> None:
    assert load({ev.LOKI_URL: URL, ev.LOKI_FLUSH: mode}).buffer_timeout_ms == timeout
    explicit = load({ev.LOKI_URL: URL, ev.LOKI_FLUSH: mode, ev.LOKI_BUFFER_TIMEOUT_MS: "500"})
    assert explicit.buffer_timeout_ms == 500


MI = {ev.AWS_LAMBDA_INITIALIZATION_TYPE: ev.MANAGED_INSTANCES}


@pytest.mark.parametrize("flush", [None, "adaptive", "batch"])
def test_managed_instances_flush_on_time_and_size_silently(flush: str | None) -> None:
    env = {ev.LOKI_URL: URL, **MI}
    if flush is not None:
        env[ev.LOKI_FLUSH] = flush
    cfg = load(env)
    assert cfg.managed_instances is True
    assert (cfg.flush_mode, cfg.buffer_timeout_ms, cfg.problems) == ("batch", 100, ())


def test_managed_instances_say_once_that_end_of_invoke_has_no_effect() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_FLUSH: "end_of_invoke", **MI})
    assert cfg.flush_mode == "batch"
    assert cfg.problems == ("LOKI_FLUSH=end_of_invoke has no effect on Lambda Managed Instances; "
                            "flushing on time and size",)


def test_other_initialization_types_are_classic() -> None:
    assert load({ev.LOKI_URL: URL, ev.AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand"}).managed_instances is False


ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:loki-AbCdEf"


@pytest.mark.parametrize("secret", [ev.LOKI_BASIC_AUTH_SECRET_ARN, ev.LOKI_BEARER_TOKEN_SECRET_ARN])
@pytest.mark.parametrize(
    ("endpoint", "host"),
    [
        ({ev.LOKI_URL: "http://logs.example.com/loki/api/v1/push"}, "logs.example.com"),
        ({ev.LOKI_URL: "HTTP://10.0.0.5:3100/loki/api/v1/push"}, "10.0.0.5"),
        ({ev.LOKI_URL: "http://[2001:db8::1]:3100/loki/api/v1/push"}, "2001:db8::1"),
        ({ev.LOKI_IP: "10.1.2.3"}, "10.1.2.3"),
    ],
)
def test_credentials_are_never_sent_over_http_to_another_host(
    secret: str, endpoint: dict[str, str], host: str
) -> None:
    cfg = load({**endpoint, secret: ARN})
    assert cfg.url is None
    assert cfg.problems == (f"refusing to send credentials over http:// to {host}; use an https:// LOKI_URL",)


@pytest.mark.parametrize(
    "url",
    [
        "https://logs.example.com/loki/api/v1/push",
        "http://127.0.0.1:3100/loki/api/v1/push",
        "http://127.8.9.10:3100/loki/api/v1/push",
        "http://localhost:3100/loki/api/v1/push",
        "http://[::1]:3100/loki/api/v1/push",
    ],
)
def test_credentials_over_https_or_to_loopback_are_fine(url: str) -> None:
    cfg = load({ev.LOKI_URL: url, ev.LOKI_BASIC_AUTH_SECRET_ARN: ARN})
    assert (cfg.url, cfg.problems) == (url, ())


def test_http_without_credentials_is_fine() -> None:
    assert load({ev.LOKI_URL: "http://logs.example.com/loki/api/v1/push"}).problems == ()


def test_telemetry_types_parse_and_dedupe() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_TELEMETRY_TYPES: " Function, platform,function ,extension"})
    assert cfg.telemetry_types == ("function", "platform", "extension")


def test_unknown_telemetry_type_is_skipped_with_message() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_TELEMETRY_TYPES: "function,logs"})
    assert cfg.telemetry_types == ("function",)
    assert "unknown type 'logs'" in cfg.problems[0]


def test_no_known_telemetry_type_uses_default() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_TELEMETRY_TYPES: "logs"})
    assert cfg.telemetry_types == ev.DEFAULT_TELEMETRY_TYPES
    assert any("names no known type" in p for p in cfg.problems)


def test_labels_are_parsed_sorted_and_stringified() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_LABELS: '{"env": "prod", "app": "shop", "tier": 2, "empty": ""}'})
    assert cfg.labels == (("app", "shop"), ("env", "prod"), ("tier", "2"))
    assert cfg.problems == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "LOKI_LABELS must be a JSON object"),
        ('["a"]', "LOKI_LABELS must be a JSON object"),
        ('{"1bad": "x"}', "label name '1bad' must match"),
        ('{"__x": "x"}', "label name '__x' must match"),
        ('{"a-b": "x"}', "label name 'a-b' must match"),
        ('{"é": "x"}', "label name 'é' must match"),
        ('{"source": "x"}', "label 'source' is set by the extension itself"),
        ('{"function": "x"}', "label 'function' is set by the extension itself"),
        ('{"type": "x"}', "label 'type' is set by the extension itself"),
        ('{"a": {"b": 1}}', "label 'a' must have a string value"),
        ('{"a": true}', "label 'a' must have a string value"),
    ],
)
def test_bad_labels_are_skipped_with_a_message(raw: str, message: str) -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_LABELS: raw})
    assert cfg.labels == ()
    assert len(cfg.problems) == 1 and message in cfg.problems[0]


def test_too_many_labels_are_capped_at_lokis_limit() -> None:
    labels = "{" + ",".join(f'"l{i:02d}": "v"' for i in range(20)) + "}"
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_LABELS: labels})
    assert len(cfg.labels) == ev.MAX_LABELS - len(ev.RESERVED_LABELS)
    assert len(cfg.problems) == 20 - len(cfg.labels)
    assert "more than 15 labels" in cfg.problems[0]


def test_tenant_and_secret_arns() -> None:
    sm = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki-abc"
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_TENANT_ID: "team-a", ev.LOKI_BASIC_AUTH_SECRET_ARN: sm})
    assert (cfg.tenant_id, cfg.basic_auth_secret_arn, cfg.bearer_token_secret_arn) == ("team-a", sm, None)


def test_tenant_with_line_break_is_refused() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_TENANT_ID: "a\r\nX-Evil: 1"})
    assert cfg.tenant_id is None and "must not contain line breaks" in cfg.problems[0]


def test_bad_secret_arn_disables_shipping() -> None:
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_BEARER_TOKEN_SECRET_ARN: "my-token"})
    assert cfg.url is None
    assert "LOKI_BEARER_TOKEN_SECRET_ARN must be the ARN" in cfg.problems[0]


def test_both_secrets_use_basic_auth() -> None:
    sm = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki-abc"
    ssm = "arn:aws:ssm:eu-west-1:123456789012:parameter/loki-token"
    cfg = load({ev.LOKI_URL: URL, ev.LOKI_BASIC_AUTH_SECRET_ARN: sm, ev.LOKI_BEARER_TOKEN_SECRET_ARN: ssm})
    assert cfg.basic_auth_secret_arn == sm and cfg.bearer_token_secret_arn is None
    assert "using basic auth" in cfg.problems[0]


def test_function_name_defaults_to_unknown() -> None:
    assert load({ev.LOKI_URL: URL}).function_name == "unknown"


@given(st.dictionaries(st.sampled_from([*ev.ALL, "AWS_LAMBDA_FUNCTION_NAME"]), st.text(max_size=40)))
def test_load_never_raises(env: dict[str, str]) -> None:
    cfg = load(env)
    for name, setting in ev.SETTINGS.items():
        assert setting.minimum <= _read(cfg, name) <= setting.maximum, name
    assert cfg.telemetry_types and set(cfg.telemetry_types) <= set(ev.TELEMETRY_TYPES)


_plain = st.text(st.characters(blacklist_characters='"\\', min_codepoint=0x20), max_size=12)


_values = _plain | st.integers() | st.floats(allow_nan=False, allow_infinity=False)


@given(
    st.dictionaries(_plain, _values, max_size=6),
    st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")]),
)
def test_flat_labels_are_read_without_json_and_as_json_reads_them(
    labels: dict[str, object], separators: tuple[str, str]
) -> None:
    import json

    from loki_telemetry_extension.config import flat_json_object

    raw = json.dumps(labels, ensure_ascii=False, separators=separators)
    got = flat_json_object(raw)
    assert got == json.loads(raw)
    assert [type(v) for v in (got or {}).values()] == [type(v) for v in json.loads(raw).values()]


_ODD = ['{"a": 1,}', '{"a" 1}', '{"a": 01}', '{"a": true}', '{"a": -}', '{"a": "b" "c"}', '{"a": [1]}',
        '{"a":1.}', '{ }', '{"a":"\\u0041"}', '{"a":1e5}', '{"a":-0}', '{"a":"x",  "a":"y"}']


@given(st.text(max_size=40) | st.sampled_from(_ODD))
def test_the_flat_reader_never_disagrees_with_json(raw: str) -> None:
    import json

    from loki_telemetry_extension.config import flat_json_object

    got = flat_json_object(raw)
    if got is not None:
        assert got == json.loads(raw)


def test_labels_need_no_json_at_init() -> None:
    import subprocess
    import sys

    from ext_process import EXTENSION_ROOT

    code = ("import sys; sys.path.append(sys.argv[1]); from loki_telemetry_extension.config import load; "
            "env = {'LOKI_URL': 'http://l/loki/api/v1/push', 'LOKI_LABELS': sys.argv[2]}; cfg = load(env); "
            "assert cfg.labels == (('env', 'prod'), ('n', '3')), cfg.labels; print('json' in sys.modules)")
    labels = '{"env": "prod", "n": 3}'
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(EXTENSION_ROOT), labels],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
