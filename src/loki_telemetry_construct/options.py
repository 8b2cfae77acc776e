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

from ._contract import envvars
from .runtimes import EXTENSION_MODES, Extension
from .settings import CredentialSource, LokiOptions, TelemetryBuffering
from .warning_ids import WarningIds

__all__ = ["ConfigError", "CredentialSource", "Settings", "TelemetryBuffering", "build", "fail"]

# Loki's tenant-id rules (pkg/tenant): these characters, at most 150 bytes, not "." or "..".
_TENANT_PATTERN = re.compile(r"^[A-Za-z0-9!\-_.*'()]{1,150}$")
_LABEL_PATTERN = re.compile(envvars.LABEL_NAME_PATTERN)
_HOSTNAME_PATTERN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_LAYER_ARN_PATTERN = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
#: Push paths Loki serves (the Promtail-era one too); anything else is probably a mistake,
#: but proxies may use their own paths, so it is a warning, not an error.
PUSH_PATHS = (envvars.LOKI_PUSH_PATH, "/api/prom/push")
#: Hosts the extension (and so the construct) allows plain http to when credentials are set:
#: traffic to them never leaves the machine.
LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class Settings:
    """Validated options: the environment to set and the IAM changes to make."""

    environment: Mapping[str, str]
    credentials: tuple[CredentialSource, ...]
    disable_cloudwatch_logs: bool
    extension: Extension = "auto"
    #: Warnings about the options themselves, as ``(warning id, message)``: reported once per stack.
    notices: tuple[tuple[str, str], ...] = ()

    def fingerprint(self) -> str:
        """A stable summary, to detect a function instrumented twice with different settings."""
        return json.dumps(
            {
                "env": {k: _plain(val) for k, val in sorted(self.environment.items())},
                "cw": self.disable_cloudwatch_logs,
                "extension": self.extension,
            },
            sort_keys=True,
        )

    def difference(self, other: Settings) -> tuple[str, str]:
        """What differs between two settings, each side as ``NAME=value, ...``."""
        mine, theirs = self._items(), other._items()
        keys = sorted(set(mine) | set(theirs))
        return (
            ", ".join(f"{k}={mine.get(k, '<unset>')}" for k in keys if mine.get(k) != theirs.get(k)),
            ", ".join(f"{k}={theirs.get(k, '<unset>')}" for k in keys if mine.get(k) != theirs.get(k)),
        )

    def _items(self) -> dict[str, str]:
        items = {k: _plain(val) for k, val in self.environment.items()}
        items["disable_cloudwatch_logs"] = str(self.disable_cloudwatch_logs)
        items["extension"] = self.extension
        return items

    def describe(self) -> str:
        """The settings in a line a user can compare: ``LOKI_IP=10.0.0.5, ...``."""
        parts = [f"{k}={_plain(val)}" for k, val in sorted(self.environment.items())]
        if self.disable_cloudwatch_logs:
            parts.append("disable_cloudwatch_logs=True")
        if self.extension != "auto":
            parts.append(f"extension={self.extension}")
        return ", ".join(parts)


def _plain(value: object) -> str:
    # Tokens render as "${Token[...]}": stable within one app, which is all a comparison needs.
    return value if isinstance(value, str) else repr(value)


class ConfigError(ValueError):
    """A configuration mistake, reported at synth time."""


def fail(option: str, value: object, rule: str, fix: str) -> ConfigError:
    """Build the error message every validation failure uses: option, value, rule, fix."""
    return ConfigError(f"loki-telemetry-construct: {option}={value!r} is invalid: {rule}. Fix: {fix}.")


def _unresolved(value: object) -> bool:
    return Token.is_unresolved(value)


def _setting(option: str, value: object, name: str) -> str:
    """Validate ``value`` against ``name``'s row of the extension's range table, read as its unit
    says: a ``Duration`` for milliseconds, an int or a ``Size`` for bytes, else an int."""
    unit = envvars.SETTINGS[name].unit
    if unit == "ms":
        return _millis(option, value, name)
    if unit == "bytes":
        return _bytes(option, value, name)
    return _int_in_range(option, value, name)


def _int_in_range(option: str, value: object, name: str) -> str:
    row = envvars.SETTINGS[name]
    lo, hi, default = row.minimum, row.maximum, row.default
    if _unresolved(value):
        return Token.as_string(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(option, value, f"must be an integer from {lo} to {hi}", f"pass an int (default {default})")
    if not lo <= value <= hi:
        raise fail(
            option, value, f"must be from {lo} to {hi}", f"pass a value in that range (default {default})"
        )
    return str(value)


def _bytes(option: str, value: object, name: str) -> str:
    if isinstance(value, Size):
        if value.is_unresolved():
            return Token.as_string(value.to_bytes())
        value = int(value.to_bytes())
    return _int_in_range(option, value, name)


def _millis(option: str, value: object, name: str) -> str:
    row = envvars.SETTINGS[name]
    lo, hi, default = row.minimum, row.maximum, row.default
    if not isinstance(value, Duration):
        raise fail(option, value, "must be an aws_cdk.Duration", f"pass e.g. Duration.millis({default})")
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
            _credential_fix(source),
        )
    return arn


def _credential_fix(source: object) -> str:
    """The import that turns what the user passed into a credential source."""
    text = source if isinstance(source, str) else ""
    if text.startswith("arn:") and ":secretsmanager:" in text:
        return f"pass secretsmanager.Secret.from_secret_complete_arn(self, 'LokiAuth', {text!r})"
    if text.startswith("arn:") and ":ssm:" in text:
        return (
            "pass ssm.StringParameter.from_secure_string_parameter_attributes(self, 'LokiAuth', "
            "parameter_name='/the/parameter/name')"
        )
    return "pass e.g. secretsmanager.Secret.from_secret_name_v2(self, 'LokiAuth', 'loki/auth')"


def layer_arn(value: str, option: str = "layer") -> str:
    """Validate a layer version ARN given as ``layer=`` (or in ``native_layers=``)."""
    if _unresolved(value) or _LAYER_ARN_PATTERN.match(value):
        return value
    raise fail(
        option,
        value,
        "a string layer must be a layer *version* ARN "
        "(arn:aws:lambda:<region>:<account>:layer:<name>:<version>)",
        "pass the full ARN including the version number, or a LokiTelemetryLayer / ILayerVersion",
    )


def build(opts: LokiOptions) -> Settings:
    """Validate every option and render the environment; raises :class:`ConfigError`."""
    v = envvars
    name, value = endpoint(opts.loki_ip, opts.loki_url)
    env: dict[str, str] = {name: value}
    notices: list[tuple[str, str]] = []
    if name == v.LOKI_URL:
        notices.extend(_push_path_notice(value))
    # Always written, so the console shows it (the variable every version has read).
    batch_size = v.SETTINGS[v.DISPATCH_MIN_BATCH_SIZE].default if opts.batch_size is None else opts.batch_size
    env[v.DISPATCH_MIN_BATCH_SIZE] = _setting("batch_size", batch_size, v.DISPATCH_MIN_BATCH_SIZE)
    if opts.flush_interval is not None:
        env[v.LOKI_FLUSH_INTERVAL_MS] = _setting(
            "flush_interval", opts.flush_interval, v.LOKI_FLUSH_INTERVAL_MS
        )
    flush_mode = _flush(opts.flush, opts.ship_before_freeze)
    if flush_mode is not None:
        env[v.LOKI_FLUSH] = flush_mode
    if opts.dense_gap is not None:
        env[v.LOKI_DENSE_GAP_MS] = _setting("dense_gap", opts.dense_gap, v.LOKI_DENSE_GAP_MS)
    if opts.high_water_percent is not None:
        env[v.LOKI_HIGH_WATER_PERCENT] = _setting(
            "high_water_percent", opts.high_water_percent, v.LOKI_HIGH_WATER_PERCENT
        )
    if opts.telemetry_types is not None:
        env[v.LOKI_TELEMETRY_TYPES] = telemetry_types(opts.telemetry_types)
    if opts.buffering is not None:
        env.update(_buffering(opts.buffering))
    if opts.labels:
        env[v.LOKI_LABELS] = json.dumps(labels(opts.labels), separators=(",", ":"), sort_keys=True)
    if opts.tenant_id is not None:
        env[v.LOKI_TENANT_ID] = tenant(opts.tenant_id)
    credentials: list[CredentialSource] = []
    if opts.basic_auth_secret is not None and opts.bearer_token_secret is not None:
        raise fail(
            "basic_auth_secret/bearer_token_secret",
            "<both set>",
            "Loki accepts one Authorization header: basic auth or a bearer token, not both",
            "pass only one of them",
        )
    for option, source, var in (
        ("basic_auth_secret", opts.basic_auth_secret, v.LOKI_BASIC_AUTH_SECRET_ARN),
        ("bearer_token_secret", opts.bearer_token_secret, v.LOKI_BEARER_TOKEN_SECRET_ARN),
    ):
        if source is not None:
            env[var] = credential_arn(option, source)
            _check_credentials_transport(option, opts.loki_ip, opts.loki_url)
            credentials.append(source)
    if opts.max_buffer_bytes is not None:
        env[v.LOKI_MAX_BUFFER_BYTES] = _setting(
            "max_buffer_bytes", opts.max_buffer_bytes, v.LOKI_MAX_BUFFER_BYTES
        )
    if opts.max_line_bytes is not None:
        env[v.LOKI_MAX_LINE_BYTES] = _setting("max_line_bytes", opts.max_line_bytes, v.LOKI_MAX_LINE_BYTES)
    if not isinstance(opts.disable_cloudwatch_logs, bool):
        raise fail(
            "disable_cloudwatch_logs", opts.disable_cloudwatch_logs, "must be a bool", "pass True or False"
        )
    if opts.extension not in EXTENSION_MODES:
        raise fail(
            "extension",
            opts.extension,
            "must be one of " + ", ".join(repr(m) for m in EXTENSION_MODES),
            "pass 'auto' (the default: the Python build on Python 3.10-3.13, the native build elsewhere), "
            "'python' or 'native'",
        )
    return Settings(env, tuple(credentials), opts.disable_cloudwatch_logs, opts.extension, tuple(notices))


def _flush(flush: object, ship_before_freeze: object) -> str | None:
    """LOKI_FLUSH from ``flush`` or its older spelling; None keeps the extension's default."""
    if ship_before_freeze is not None and not isinstance(ship_before_freeze, bool):
        raise fail("ship_before_freeze", ship_before_freeze, "must be a bool", "pass True or False")
    if flush is not None and ship_before_freeze is not None:
        raise fail(
            "flush/ship_before_freeze",
            (flush, ship_before_freeze),
            "ship_before_freeze is the older spelling of flush, so only one of them may be given",
            "drop ship_before_freeze and pass flush='end_of_invoke' (was ship_before_freeze=True) "
            "or flush='batch' (was ship_before_freeze=False)",
        )
    if ship_before_freeze is not None:
        return "end_of_invoke" if ship_before_freeze else "batch"
    if flush is None or _unresolved(flush):
        return None if flush is None else str(flush)
    if flush not in envvars.FLUSH_MODES:
        raise fail(
            "flush",
            flush,
            "must be one of " + ", ".join(repr(m) for m in envvars.FLUSH_MODES),
            f"pass e.g. flush='end_of_invoke', or leave it unset for {envvars.DEFAULT_FLUSH!r}",
        )
    return str(flush)


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_credentials_transport(option: str, loki_ip: object, loki_url: object) -> None:
    """Credentials go over https only (or plain http to this very machine)."""
    if loki_ip is not None:
        if isinstance(loki_ip, str) and not _unresolved(loki_ip) and not _is_loopback(loki_ip):
            raise fail(
                f"{option}/loki_ip",
                loki_ip,
                "loki_ip means an http:// URL, and credentials must not travel in cleartext "
                "(plain http is allowed to loopback hosts only: 127.0.0.0/8, localhost, ::1)",
                "pass loki_url='https://<host>/loki/api/v1/push' instead of loki_ip",
            )
        return
    if not isinstance(loki_url, str) or _unresolved(loki_url):
        return  # known at deploy time only: the extension refuses http with credentials itself
    parts = urlsplit(loki_url)
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise fail(
            f"{option}/loki_url",
            loki_url,
            "credentials must not travel in cleartext: an http:// URL is allowed with credentials "
            "only to a loopback host (127.0.0.0/8, localhost, ::1)",
            f"use https://{loki_url[len('http://') :]}",
        )


def _push_path_notice(url: str) -> list[tuple[str, str]]:
    if _unresolved(url):
        return []
    path = urlsplit(url).path.rstrip("/")
    if path in PUSH_PATHS:
        return []
    return [
        (
            WarningIds.UNUSUAL_PUSH_PATH,
            f"Loki logging: loki_url={url!r} has the path {path!r}, and Loki accepts pushes on "
            f"{' or '.join(PUSH_PATHS)} only. If a proxy serves this path, acknowledge this warning; "
            f"otherwise end the URL with {envvars.LOKI_PUSH_PATH}.",
        )
    ]


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
    for option, value, name in (
        ("buffering.max_items", buffering.max_items, v.LOKI_BUFFER_MAX_ITEMS),
        ("buffering.max_bytes", buffering.max_bytes, v.LOKI_BUFFER_MAX_BYTES),
        ("buffering.timeout", buffering.timeout, v.LOKI_BUFFER_TIMEOUT_MS),
    ):
        if value is not None:
            env[name] = _setting(option, value, name)
    return env
