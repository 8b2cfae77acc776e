"""Option validation: turn the aspect's keyword options into the extension's environment.

Everything here runs before any construct is created, so bad configuration fails at
synth time with a message that names the option, the value, the rule and the fix.
Values that are CDK tokens (known only at deploy time) are passed through unvalidated.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aws_cdk import Duration, Size, Token
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm

from ._contract import envvars

#: A Secrets Manager secret or an SSM parameter (SecureString) holding a credential.
CredentialSource = secretsmanager.ISecret | ssm.IParameter

# Loki's tenant-id rules (pkg/tenant): these characters, at most 150 bytes, not "." or "..".
_TENANT_PATTERN = re.compile(r"^[A-Za-z0-9!\-_.*'()]{1,150}$")
_LABEL_PATTERN = re.compile(envvars.LABEL_NAME_PATTERN)
_HOSTNAME_PATTERN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_LAYER_ARN_PATTERN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")


@dataclass(frozen=True)
class TelemetryBuffering:
    """How the Telemetry API buffers records before it delivers them to the extension.

    Each field left as ``None`` keeps the extension's default. AWS's limits apply:
    ``max_items`` 1,000-10,000, ``max_bytes`` 262,144-1,048,576, ``timeout`` 25 ms-30 s.
    """

    max_items: int | None = None
    max_bytes: int | Size | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class Settings:
    """Validated options: the environment to set and the IAM changes to make."""

    environment: Mapping[str, str]
    credentials: tuple[CredentialSource, ...]
    disable_cloudwatch_logs: bool

    def fingerprint(self) -> str:
        """A stable summary, to detect a function instrumented twice with different settings."""
        return json.dumps(
            {"env": dict(sorted(self.environment.items())), "cw": self.disable_cloudwatch_logs},
            sort_keys=True,
        )


class ConfigError(ValueError):
    """A configuration mistake, reported at synth time."""


def fail(option: str, value: object, rule: str, fix: str) -> ConfigError:
    """Build the error message every validation failure uses: option, value, rule, fix."""
    return ConfigError(f"loki-telemetry-construct: {option}={value!r} is invalid: {rule}. Fix: {fix}.")


def _unresolved(value: object) -> bool:
    return Token.is_unresolved(value)


def _int_in_range(option: str, value: object, lo: int, hi: int, default: int) -> str:
    if _unresolved(value):
        return Token.as_string(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(option, value, f"must be an integer from {lo} to {hi}", f"pass an int (default {default})")
    if not lo <= value <= hi:
        raise fail(
            option, value, f"must be from {lo} to {hi}", f"pass a value in that range (default {default})"
        )
    return str(value)


def _bytes(option: str, value: int | Size, lo: int, hi: int, default: int) -> str:
    if isinstance(value, Size):
        if value.is_unresolved():
            return Token.as_string(value.to_bytes())
        value = int(value.to_bytes())
    return _int_in_range(option, value, lo, hi, default)


def _millis(option: str, value: Duration, lo: int, hi: int, default: int) -> str:
    if not isinstance(value, Duration):
        raise fail(option, value, "must be a aws_cdk.Duration", f"pass e.g. Duration.millis({default})")
    if value.is_unresolved():
        return Token.as_string(value.to_milliseconds())
    ms = value.to_milliseconds()
    if not lo <= ms <= hi or ms != int(ms):
        raise fail(
            option,
            value.to_human_string(),
            f"must be a whole number of milliseconds from {lo} ms to {hi} ms",
            f"pass a Duration in that range (default {default} ms)",
        )
    return str(int(ms))


def endpoint(loki_ip: str | None, loki_url: str | None) -> tuple[str, str]:
    """Validate the destination; returns ``(env var name, value)``."""
    if (loki_ip is None) == (loki_url is None):
        both = "both were given" if loki_ip is not None else "neither was given"
        raise fail(
            "loki_ip/loki_url",
            (loki_ip, loki_url),
            f"exactly one of loki_ip and loki_url is required ({both})",
            "pass loki_url='https://<host>/loki/api/v1/push' for any Loki, or loki_ip='<host>' for "
            "http://<host>:3100/loki/api/v1/push",
        )
    if loki_ip is not None:
        return envvars.LOKI_IP, _check_ip(loki_ip)
    assert loki_url is not None
    return envvars.LOKI_URL, _check_url(loki_url)


def _check_ip(value: object) -> str:
    if _unresolved(value):
        return str(value)
    if not isinstance(value, str) or not value:
        raise fail("loki_ip", value, "must be a non-empty host name or IPv4 address", "pass e.g. '10.0.0.5'")
    push = f"{envvars.LOKI_IP_PORT}{envvars.LOKI_PUSH_PATH}"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME_PATTERN.match(value):
            raise fail(
                "loki_ip",
                value,
                f"must be a bare host name or IPv4 address (it means http://<loki_ip>:{push})",
                "drop any scheme, port or path, or use loki_url for a full push URL",
            ) from None
        return value
    if address.version == 6:
        raise fail(
            "loki_ip",
            value,
            "IPv6 addresses are not supported here",
            f"use loki_url='http://[{value}]:{push}'",
        )
    return value


def _check_url(value: object) -> str:
    if _unresolved(value):
        return str(value)
    example = "'https://logs-prod-012.grafana.net/loki/api/v1/push'"
    if not isinstance(value, str):
        raise fail("loki_url", value, "must be a string", f"pass the full push URL, e.g. {example}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise fail("loki_url", value, f"is not a valid URL ({exc})", f"pass e.g. {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        rule = "must be an http:// or https:// URL with a host"
        raise fail("loki_url", value, rule, f"pass e.g. {example}")
    if parts.username is not None or parts.password is not None:
        raise fail(
            "loki_url",
            "<redacted>",
            "must not embed credentials: they would be stored in plain text in the template",
            "remove user:password@ and pass basic_auth_secret=<an ISecret or SSM parameter>",
        )
    if parts.path in ("", "/"):
        raise fail(
            "loki_url",
            value,
            "must be the full push URL, not the Loki base URL",
            f"use '{value.rstrip('/')}{envvars.LOKI_PUSH_PATH}'",
        )
    return value


def telemetry_types(value: Sequence[str]) -> str:
    """Validate the Telemetry API record types; returns the comma-separated env value."""
    if isinstance(value, str):
        raise fail("telemetry_types", value, "must be a sequence of strings", f"pass e.g. ({value!r},)")
    types = list(dict.fromkeys(value))
    allowed = envvars.TELEMETRY_TYPES
    unknown = [t for t in types if t not in allowed]
    if unknown or not types:
        raise fail(
            "telemetry_types",
            tuple(value),
            f"must be a non-empty subset of {allowed}" + (f"; unknown: {unknown}" if unknown else ""),
            f"pass e.g. {envvars.DEFAULT_TELEMETRY_TYPES} (the default) or ('function', 'platform')",
        )
    return ",".join(types)


def labels(value: Mapping[str, str]) -> dict[str, str]:
    """Validate static labels against Loki's rules and the labels the extension reserves."""
    if not isinstance(value, Mapping):
        raise fail("labels", value, "must be a mapping of label name to value", "pass e.g. {'env': 'prod'}")
    reserved = envvars.RESERVED_LABELS
    for name, label_value in value.items():
        if not isinstance(name, str) or not _LABEL_PATTERN.match(name) or name.startswith("__"):
            raise fail(
                "labels",
                name,
                f"label names must match {envvars.LABEL_NAME_PATTERN} and must not start with '__'",
                "rename the label, e.g. 'env' or 'team_name'",
            )
        if name in reserved:
            raise fail(
                "labels",
                name,
                f"{reserved} are set by the extension itself",
                "choose another label name",
            )
        if _unresolved(label_value):
            continue
        if not isinstance(label_value, str) or not label_value:
            raise fail(
                "labels",
                {name: label_value},
                "label values must be non-empty strings (Loki drops empty labels)",
                "pass a string value or leave the label out",
            )
    limit = envvars.MAX_LABELS - len(reserved)
    if len(value) > limit:
        raise fail(
            "labels",
            sorted(value),
            f"Loki allows {envvars.MAX_LABELS} labels per stream and the extension adds {len(reserved)} "
            f"({', '.join(reserved)}), so at most {limit} static labels fit; got {len(value)}",
            "drop labels, or move high-cardinality values into the log line",
        )
    return dict(value)


def tenant(value: str) -> str:
    """Validate an X-Scope-OrgID value the way Loki does."""
    if _unresolved(value):
        return value
    if not isinstance(value, str) or not _TENANT_PATTERN.match(value) or value in (".", ".."):
        raise fail(
            "tenant_id",
            value,
            "Loki tenant ids are 1-150 characters from A-Z a-z 0-9 ! - _ . * ' ( ) and not '.' or '..'",
            "pass e.g. 'team-a'",
        )
    return value


def credential_arn(option: str, source: object) -> str:
    """The ARN the extension fetches at init: a secret's or an SSM parameter's."""
    arn = getattr(source, "secret_arn", None)
    if arn is None:
        arn = getattr(source, "parameter_arn", None)
    if not isinstance(arn, str):
        raise fail(
            option,
            source,
            "must be a secretsmanager.ISecret or an ssm.IParameter (SecureString)",
            "pass e.g. secretsmanager.Secret.from_secret_name_v2(self, 'LokiAuth', 'loki/auth')",
        )
    return arn


def layer_arn(value: str) -> str:
    """Validate a layer version ARN given as ``layer=``."""
    if _unresolved(value) or _LAYER_ARN_PATTERN.match(value):
        return value
    raise fail(
        "layer",
        value,
        "a string layer must be a layer *version* ARN "
        "(arn:aws:lambda:<region>:<account>:layer:<name>:<version>)",
        "pass the full ARN including the version number, or a LokiTelemetryLayer / ILayerVersion",
    )


def build(
    *,
    loki_ip: str | None,
    loki_url: str | None,
    batch_size: int | None,
    flush_interval: Duration | None,
    ship_before_freeze: bool,
    telemetry_types_: Sequence[str] | None,
    buffering: TelemetryBuffering | None,
    labels_: Mapping[str, str] | None,
    tenant_id: str | None,
    basic_auth_secret: CredentialSource | None,
    bearer_token_secret: CredentialSource | None,
    max_buffer_bytes: int | Size | None,
    max_line_bytes: int | Size | None,
    disable_cloudwatch_logs: bool,
) -> Settings:
    """Validate every option and render the environment; raises :class:`ConfigError`."""
    v = envvars
    name, value = endpoint(loki_ip, loki_url)
    env: dict[str, str] = {name: value}
    # The seed always set the batch size; keep it explicit so the console shows it.
    env[v.DISPATCH_MIN_BATCH_SIZE] = _int_in_range(
        "batch_size",
        v.DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
        v.MIN_BATCH_SIZE,
        v.MAX_BATCH_SIZE,
        v.DEFAULT_BATCH_SIZE,
    )
    if flush_interval is not None:
        env[v.LOKI_FLUSH_INTERVAL_MS] = _millis(
            "flush_interval",
            flush_interval,
            v.MIN_FLUSH_INTERVAL_MS,
            v.MAX_FLUSH_INTERVAL_MS,
            v.DEFAULT_FLUSH_INTERVAL_MS,
        )
    if not isinstance(ship_before_freeze, bool):
        raise fail("ship_before_freeze", ship_before_freeze, "must be a bool", "pass True or False")
    if ship_before_freeze:
        env[v.LOKI_SHIP_BEFORE_FREEZE] = "true"
    if telemetry_types_ is not None:
        env[v.LOKI_TELEMETRY_TYPES] = telemetry_types(telemetry_types_)
    if buffering is not None:
        env.update(_buffering(buffering))
    if labels_:
        env[v.LOKI_LABELS] = json.dumps(labels(labels_), separators=(",", ":"), sort_keys=True)
    if tenant_id is not None:
        env[v.LOKI_TENANT_ID] = tenant(tenant_id)
    credentials: list[CredentialSource] = []
    if basic_auth_secret is not None and bearer_token_secret is not None:
        raise fail(
            "basic_auth_secret/bearer_token_secret",
            "<both set>",
            "Loki accepts one Authorization header: basic auth or a bearer token, not both",
            "pass only one of them",
        )
    for option, source, var in (
        ("basic_auth_secret", basic_auth_secret, v.LOKI_BASIC_AUTH_SECRET_ARN),
        ("bearer_token_secret", bearer_token_secret, v.LOKI_BEARER_TOKEN_SECRET_ARN),
    ):
        if source is not None:
            env[var] = credential_arn(option, source)
            credentials.append(source)
    if max_buffer_bytes is not None:
        env[v.LOKI_MAX_BUFFER_BYTES] = _bytes(
            "max_buffer_bytes",
            max_buffer_bytes,
            v.MIN_MAX_BUFFER_BYTES,
            v.MAX_MAX_BUFFER_BYTES,
            v.DEFAULT_MAX_BUFFER_BYTES,
        )
    if max_line_bytes is not None:
        env[v.LOKI_MAX_LINE_BYTES] = _bytes(
            "max_line_bytes",
            max_line_bytes,
            v.MIN_MAX_LINE_BYTES,
            v.MAX_MAX_LINE_BYTES,
            v.DEFAULT_MAX_LINE_BYTES,
        )
    if not isinstance(disable_cloudwatch_logs, bool):
        raise fail("disable_cloudwatch_logs", disable_cloudwatch_logs, "must be a bool", "pass True or False")
    return Settings(env, tuple(credentials), disable_cloudwatch_logs)


def _buffering(buffering: TelemetryBuffering) -> dict[str, str]:
    v = envvars
    if not isinstance(buffering, TelemetryBuffering):
        raise fail(
            "buffering",
            buffering,
            "must be a TelemetryBuffering",
            "pass TelemetryBuffering(max_items=..., max_bytes=..., timeout=Duration.millis(...))",
        )
    env: dict[str, str] = {}
    if buffering.max_items is not None:
        env[v.LOKI_BUFFER_MAX_ITEMS] = _int_in_range(
            "buffering.max_items",
            buffering.max_items,
            v.MIN_BUFFER_MAX_ITEMS,
            v.MAX_BUFFER_MAX_ITEMS,
            v.DEFAULT_BUFFER_MAX_ITEMS,
        )
    if buffering.max_bytes is not None:
        env[v.LOKI_BUFFER_MAX_BYTES] = _bytes(
            "buffering.max_bytes",
            buffering.max_bytes,
            v.MIN_BUFFER_MAX_BYTES,
            v.MAX_BUFFER_MAX_BYTES,
            v.DEFAULT_BUFFER_MAX_BYTES,
        )
    if buffering.timeout is not None:
        env[v.LOKI_BUFFER_TIMEOUT_MS] = _millis(
            "buffering.timeout",
            buffering.timeout,
            v.MIN_BUFFER_TIMEOUT_MS,
            v.MAX_BUFFER_TIMEOUT_MS,
            v.DEFAULT_BUFFER_TIMEOUT_MS,
        )
    return env
