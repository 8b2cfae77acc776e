"""Parse the environment (names from :mod:`envvars`) once into a frozen ``Config``.

Never raises: each bad value yields a problem message naming the variable, the rule
and what was found, and the safe default is used instead.
"""

from __future__ import annotations

from . import envvars as ev

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_S = ev.SETTINGS


_DEFAULTS: dict[str, object] = {
    "url": None,  # push URL; None when no (valid) endpoint is configured: the extension is a no-op
    "batch_size": _S[ev.DISPATCH_MIN_BATCH_SIZE].default,
    "flush_interval_s": _S[ev.LOKI_FLUSH_INTERVAL_MS].default / 1000,
    "flush_mode": ev.DEFAULT_FLUSH,  # one of ev.FLUSH_MODES; "batch" on Managed Instances
    "dense_gap_ms": _S[ev.LOKI_DENSE_GAP_MS].default,
    "high_water_percent": _S[ev.LOKI_HIGH_WATER_PERCENT].default,
    "managed_instances": False,
    "max_buffer_bytes": _S[ev.LOKI_MAX_BUFFER_BYTES].default,
    "telemetry_types": ev.DEFAULT_TELEMETRY_TYPES,
    "buffer_max_items": _S[ev.LOKI_BUFFER_MAX_ITEMS].default,
    "buffer_max_bytes": _S[ev.LOKI_BUFFER_MAX_BYTES].default,
    # the default mode (adaptive) waits for runtimeDone: the smallest timeout, see load()
    "buffer_timeout_ms": _S[ev.LOKI_BUFFER_TIMEOUT_MS].minimum,
    "labels": (),  # static labels as sorted (name, value) pairs, reserved names excluded
    "tenant_id": None,
    "basic_auth_secret_arn": None,
    "bearer_token_secret_arn": None,
    "max_line_bytes": _S[ev.LOKI_MAX_LINE_BYTES].default,
    "function_name": "unknown",
    "problems": (),  # messages for the caller to report; not part of equality
}


class Config:
    """Frozen settings. A hand-written class, not a dataclass: ``dataclasses`` imports
    ``inspect`` (~10 ms), paid on every cold start before the first ``next``."""

    __slots__ = tuple(_DEFAULTS)
    url: str | None
    batch_size: int
    flush_interval_s: float
    flush_mode: str
    dense_gap_ms: int
    high_water_percent: int
    managed_instances: bool
    max_buffer_bytes: int
    telemetry_types: tuple[str, ...]
    buffer_max_items: int
    buffer_max_bytes: int
    buffer_timeout_ms: int
    labels: tuple[tuple[str, str], ...]
    tenant_id: str | None
    basic_auth_secret_arn: str | None
    bearer_token_secret_arn: str | None
    max_line_bytes: int
    function_name: str
    problems: tuple[str, ...]

    def __init__(self, **values: object) -> None:
        unknown = set(values) - set(_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown Config fields: {sorted(unknown)}")
        for name, default in _DEFAULTS.items():
            object.__setattr__(self, name, values.get(name, default))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Config is frozen")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in _DEFAULTS if n != "problems")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in _DEFAULTS)
        return f"Config({fields})"


def _int(env: Mapping[str, str], name: str, problems: list[str], default: int | None = None) -> int:
    """The integer variable ``name`` within its row of ``ev.SETTINGS``; ``default`` overrides the row's."""
    setting = _S[name]
    if default is None:
        default = setting.default
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    lo, hi = setting.minimum, setting.maximum
    if value is None or not lo <= value <= hi:
        problems.append(f"{name} must be an integer from {lo} to {hi}, got {raw!r}; using {default}")
        return default
    return value


def _bool(env: Mapping[str, str], name: str, default: bool, problems: list[str]) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    problems.append(f"{name} must be true or false, got {raw!r}; using {str(default).lower()}")
    return default


def _flush_mode(env: Mapping[str, str], managed: bool, problems: list[str]) -> str:
    """LOKI_FLUSH if set; else the legacy LOKI_SHIP_BEFORE_FREEZE (true: end_of_invoke, false:
    batch); else adaptive. Managed Instances are never frozen: always batch there."""
    ship = _bool(env, ev.LOKI_SHIP_BEFORE_FREEZE, ev.DEFAULT_SHIP_BEFORE_FREEZE, problems)
    raw = env.get(ev.LOKI_FLUSH, "")
    mode = raw.strip().lower()
    if mode and mode not in ev.FLUSH_MODES:
        problems.append(f"{ev.LOKI_FLUSH} must be one of {', '.join(ev.FLUSH_MODES)}, got {raw!r}; "
                        f"using {ev.DEFAULT_FLUSH}")
        mode = ev.DEFAULT_FLUSH
    if not mode:
        legacy = env.get(ev.LOKI_SHIP_BEFORE_FREEZE, "").strip()
        mode = ("end_of_invoke" if ship else "batch") if legacy else ev.DEFAULT_FLUSH
    if managed:
        if mode == "end_of_invoke" and env.get(ev.LOKI_FLUSH, "").strip():
            problems.append(f"{ev.LOKI_FLUSH}=end_of_invoke has no effect on Lambda Managed Instances; "
                            "flushing on time and size")
        return "batch"
    return mode


def _is_loopback(host: str) -> bool:
    h = host.strip("[]").lower()
    return h in ("localhost", "::1") or (h.startswith("127.") and all(p.isdigit() for p in h.split(".")))


def _url_host(url: str) -> str:
    """The host of an http(s) URL (IPv6 without brackets), for messages and the loopback test."""
    rest = url.partition("://")[2]
    hostport = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if hostport.startswith("["):
        return hostport[1:].partition("]")[0]
    return hostport.rpartition(":")[0] if hostport.count(":") == 1 else hostport


def _is_label_name(name: str) -> bool:
    """``[a-zA-Z_][a-zA-Z0-9_]*`` without importing ``re`` (init time matters)."""
    if not name or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
        return False
    return all(c.isascii() and (c.isalnum() or c == "_") for c in name)


def _json_number(tok: str) -> int | float | None:
    """A JSON number token (``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``) as json reads it."""
    digits = "0123456789"
    i, n = 0, len(tok)
    if i < n and tok[i] == "-":
        i += 1
    if i < n and tok[i] == "0":
        i += 1
    elif i < n and tok[i] in "123456789":
        while i < n and tok[i] in digits:
            i += 1
    else:
        return None
    is_int = True
    if i < n and tok[i] == ".":
        is_int, i = False, i + 1
        if not (i < n and tok[i] in digits):
            return None
        while i < n and tok[i] in digits:
            i += 1
    if i < n and tok[i] in "eE":
        is_int, i = False, i + 1
        if i < n and tok[i] in "+-":
            i += 1
        if not (i < n and tok[i] in digits):
            return None
        while i < n and tok[i] in digits:
            i += 1
    if i != n:
        return None
    return int(tok) if is_int else float(tok)


def flat_json_object(raw: str) -> dict[str, object] | None:
    """``{"name": "value" | number, ...}`` read without importing ``json`` (it brings ``re``:
    7-24 ms of every cold start, before the first ``next``). None for anything else (escapes,
    control characters, nesting, true/false/null, bad syntax): the caller then asks json, which
    gives the same answer for what this accepts (tests/extension/test_config.py)."""
    if "\\" in raw or any(c < " " for c in raw):
        return None
    s = raw.strip(" ")
    if len(s) < 2 or s[0] != "{" or s[-1] != "}":
        return None
    out: dict[str, object] = {}
    i, n = 1, len(s) - 1
    while i < n and s[i] == " ":
        i += 1
    if i == n:
        return out
    while True:
        if s[i] != '"':
            return None
        j = s.find('"', i + 1, n)
        if j < 0:
            return None
        key = s[i + 1 : j]
        i = j + 1
        while i < n and s[i] == " ":
            i += 1
        if i >= n or s[i] != ":":
            return None
        i += 1
        while i < n and s[i] == " ":
            i += 1
        if i >= n:
            return None
        value: object
        if s[i] == '"':
            j = s.find('"', i + 1, n)
            if j < 0:
                return None
            value, i = s[i + 1 : j], j + 1
        else:
            j = i
            while j < n and s[j] not in ", ":
                j += 1
            value = _json_number(s[i:j])
            if value is None:
                return None
            i = j
        out[key] = value
        while i < n and s[i] == " ":
            i += 1
        if i == n:
            return out
        if s[i] != ",":
            return None
        i += 1
        while i < n and s[i] == " ":
            i += 1
        if i >= n:
            return None  # a trailing comma


def _labels(env: Mapping[str, str], problems: list[str]) -> tuple[tuple[str, str], ...]:
    raw = env.get(ev.LOKI_LABELS, "").strip()
    if not raw:
        return ()
    obj = flat_json_object(raw)
    if obj is None:  # not the plain shape the construct writes: let json decide
        import json

        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
    if not isinstance(obj, dict):
        problems.append(f'{ev.LOKI_LABELS} must be a JSON object like {{"env": "prod"}}, got {raw[:100]!r}; '
                        "ignoring it")
        return ()
    out: dict[str, str] = {}
    budget = ev.MAX_LABELS - len(ev.RESERVED_LABELS)
    for name, value in obj.items():
        if not _is_label_name(name) or name.startswith("__"):
            problems.append(f"{ev.LOKI_LABELS}: label name {name!r} must match {ev.LABEL_NAME_PATTERN} "
                            "and not start with '__'; skipping it")
        elif name in ev.RESERVED_LABELS:
            problems.append(f"{ev.LOKI_LABELS}: label {name!r} is set by the extension itself; skipping it")
        elif not isinstance(value, (str, int, float)) or isinstance(value, bool):
            problems.append(f"{ev.LOKI_LABELS}: label {name!r} must have a string value, "
                            f"got {type(value).__name__}; skipping it")
        elif str(value) == "":
            continue  # Loki drops empty labels anyway
        elif len(out) >= budget:
            problems.append(f"{ev.LOKI_LABELS}: more than {ev.MAX_LABELS} labels in total "
                            f"(with {', '.join(ev.RESERVED_LABELS)}); skipping {name!r}")
        else:
            out[name] = str(value)
    return tuple(sorted(out.items()))


def _url(env: Mapping[str, str], problems: list[str]) -> str | None:
    url = env.get(ev.LOKI_URL, "").strip()
    ip = env.get(ev.LOKI_IP, "").strip()
    if url and ip:
        problems.append(f"both {ev.LOKI_URL} and {ev.LOKI_IP} are set; using {ev.LOKI_URL}")
    if url:
        scheme, sep, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if not sep or scheme.lower() not in ("http", "https") or not host or any(c.isspace() for c in url):
            problems.append(f"{ev.LOKI_URL} must be an http:// or https:// URL with a host, got {url!r}; "
                            "logs will not be shipped")
            return None
        return url if "/" in rest else url + ev.LOKI_PUSH_PATH
    if ip:
        if any(c.isspace() or c in "/@?#" for c in ip):
            problems.append(f"{ev.LOKI_IP} must be a host name or IP address, got {ip!r}; "
                            "logs will not be shipped")
            return None
        host = f"[{ip}]" if ":" in ip and not ip.startswith("[") else ip
        return f"http://{host}:{ev.LOKI_IP_PORT}{ev.LOKI_PUSH_PATH}"
    problems.append(f"no Loki endpoint: set {ev.LOKI_URL} (full push URL) or {ev.LOKI_IP}; "
                    "logs will not be shipped")
    return None


def _types(env: Mapping[str, str], problems: list[str]) -> tuple[str, ...]:
    raw = env.get(ev.LOKI_TELEMETRY_TYPES)
    if raw is None or not raw.strip():
        return ev.DEFAULT_TELEMETRY_TYPES
    chosen: list[str] = []
    for part in raw.split(","):
        t = part.strip().lower()
        if t in ev.TELEMETRY_TYPES:
            if t not in chosen:
                chosen.append(t)
        elif t:
            problems.append(f"{ev.LOKI_TELEMETRY_TYPES}: unknown type {part.strip()!r} "
                            f"(allowed: {', '.join(ev.TELEMETRY_TYPES)}); ignoring it")
    if not chosen:
        default = ",".join(ev.DEFAULT_TELEMETRY_TYPES)
        problems.append(f"{ev.LOKI_TELEMETRY_TYPES} names no known type; using {default}")
        return ev.DEFAULT_TELEMETRY_TYPES
    return tuple(chosen)


def _arn(env: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    parts = raw.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] not in ("secretsmanager", "ssm"):
        problems.append(f"{name} must be the ARN of a Secrets Manager secret or an SSM parameter, "
                        f"got {raw[:200]!r}; logs will not be shipped")
        return ""  # set but unusable: the caller treats "" as fatal misconfiguration
    return raw


def load(env: Mapping[str, str]) -> Config:
    """Read every variable once; problems are in ``Config.problems`` (caller reports them)."""
    problems: list[str] = []
    managed = env.get(ev.AWS_LAMBDA_INITIALIZATION_TYPE, "").strip() == ev.MANAGED_INSTANCES
    flush_mode = _flush_mode(env, managed, problems)
    # Shipping before the freeze waits for runtimeDone, which the Telemetry API holds back for up
    # to timeoutMs: unless the user chose a value, use the smallest AWS allows (25 ms, not 100).
    timeout = _S[ev.LOKI_BUFFER_TIMEOUT_MS]
    timeout_default = timeout.default if flush_mode == "batch" else timeout.minimum
    url = _url(env, problems)
    basic = _arn(env, ev.LOKI_BASIC_AUTH_SECRET_ARN, problems)
    bearer = _arn(env, ev.LOKI_BEARER_TOKEN_SECRET_ARN, problems)
    if basic and bearer:
        problems.append(f"both {ev.LOKI_BASIC_AUTH_SECRET_ARN} and {ev.LOKI_BEARER_TOKEN_SECRET_ARN} "
                        "are set; using basic auth")
        bearer = None
    if basic == "" or bearer == "":
        url = None  # pushing without the credentials the user asked for would only earn 401s
    plain_http = url is not None and url[:7].lower() == "http://"
    if url is not None and plain_http and (basic or bearer) and not _is_loopback(_url_host(url)):
        # A secret in cleartext on the way to Loki: refuse before anything is subscribed.
        problems.append(f"refusing to send credentials over http:// to {_url_host(url)}; use an https:// "
                        f"{ev.LOKI_URL}")
        url = None
    tenant = env.get(ev.LOKI_TENANT_ID, "").strip() or None
    if tenant is not None and any(c in tenant for c in "\r\n"):
        problems.append(f"{ev.LOKI_TENANT_ID} must not contain line breaks; ignoring it")
        tenant = None
    return Config(
        url=url,
        batch_size=_int(env, ev.DISPATCH_MIN_BATCH_SIZE, problems),
        flush_interval_s=_int(env, ev.LOKI_FLUSH_INTERVAL_MS, problems) / 1000,
        flush_mode=flush_mode,
        dense_gap_ms=_int(env, ev.LOKI_DENSE_GAP_MS, problems),
        high_water_percent=_int(env, ev.LOKI_HIGH_WATER_PERCENT, problems),
        managed_instances=managed,
        max_buffer_bytes=_int(env, ev.LOKI_MAX_BUFFER_BYTES, problems),
        telemetry_types=_types(env, problems),
        buffer_max_items=_int(env, ev.LOKI_BUFFER_MAX_ITEMS, problems),
        buffer_max_bytes=_int(env, ev.LOKI_BUFFER_MAX_BYTES, problems),
        buffer_timeout_ms=_int(env, ev.LOKI_BUFFER_TIMEOUT_MS, problems, timeout_default),
        labels=_labels(env, problems),
        tenant_id=tenant,
        basic_auth_secret_arn=basic or None,
        bearer_token_secret_arn=bearer or None,
        max_line_bytes=_int(env, ev.LOKI_MAX_LINE_BYTES, problems),
        function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip() or "unknown",
        problems=tuple(problems),
    )
