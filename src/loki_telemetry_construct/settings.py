"""Every option of ``LokiLogging`` / ``with_loki_logging``, declared once.

:class:`LokiOptions` is the single declaration (like CDK's ``FunctionOptions``): its fields
are the keyword options, and each field's metadata says which environment variables it
writes and documents its type, default and rule. The two public signatures, the validation
in :mod:`options` and the README table (:func:`options_table_markdown`) are checked against
it by tests, so adding an option means adding a field here, its check in ``options.build``
and nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_cdk import Duration, Size
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import IConstruct

from ._contract import envvars as v
from .runtimes import Extension

#: A Secrets Manager secret or an SSM parameter (SecureString) holding a credential.
CredentialSource = secretsmanager.ISecret | ssm.IParameter
#: Something that selects functions: a construct (the function itself or any scope above
#: it) or a predicate called with the function (or, for L1 functions, the CfnResource).
Selector = IConstruct | Callable[[IConstruct], bool]
#: ``flush=`` values (see the README's "Flush modes").
Flush = Literal["adaptive", "end_of_invoke", "batch"]


@dataclass(frozen=True)
class TelemetryBuffering:
    """How the Telemetry API buffers records before it delivers them to the extension.

    Each field left as ``None`` keeps the extension's default. AWS's limits apply:
    ``max_items`` 1,000-10,000, ``max_bytes`` 262,144-1,048,576, ``timeout`` 25 ms-30 s.
    """

    max_items: int | None = None
    max_bytes: int | Size | None = None
    timeout: Duration | None = None


def _doc(*, env: tuple[str, ...], type: str, default_doc: str, rule: str) -> dict[str, Any]:
    """A field's metadata: the variables it writes, and its row of the README table."""
    return {"env": env, "type": type, "default": default_doc, "rule": rule}


#: The README's dash for "no value" and for ranges.
_DASH = "\u2013"


_KIB = 1024
_MIB = 1024 * 1024


def _row(name: str) -> Any:
    """``name``'s row of the extension's range table (an ``envvars.Setting``)."""
    return v.SETTINGS[name]


def _counts(name: str) -> str:
    """A row's range as plain numbers, e.g. ``1,000`` to ``10,000`` joined by the dash."""
    row = _row(name)
    return f"{row.minimum:,}{_DASH}{row.maximum:,}"


def _millis(name: str) -> str:
    """A row's range of milliseconds, the upper end in seconds: ``25 ms`` to ``30 s`` (a 0 has no unit)."""
    row = _row(name)
    low = f"{row.minimum} ms" if row.minimum else "0"
    return f"{low}{_DASH}{row.maximum // 1000} s"


@dataclass(frozen=True)
class LokiOptions:
    """The options, as given (validated and rendered by ``options.build``)."""

    loki_ip: str | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_IP,),
            type="`str`",
            default_doc=_DASH,
            rule=f"host name or IPv4 address; means `http://<loki_ip>:{v.LOKI_IP_PORT}{v.LOKI_PUSH_PATH}`. "
            "Exactly one of `loki_ip` / `loki_url`; no credentials with it (they would go over http)",
        ),
    )
    loki_url: str | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_URL,),
            type="`str`",
            default_doc=_DASH,
            rule="full push URL with a path; `https://` whenever a credential is set (`http://` only to "
            "a loopback host: 127.0.0.0/8, `localhost`, `::1`); no `user:password@`. A path other than "
            f"`{v.LOKI_PUSH_PATH}` or `/api/prom/push` gets the `unusualPushPath` warning",
        ),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_doc(
            env=(v.DISPATCH_MIN_BATCH_SIZE,),
            type="`int`",
            default_doc=f"`{_row(v.DISPATCH_MIN_BATCH_SIZE).default}` (always written)",
            rule=f"{_counts(v.DISPATCH_MIN_BATCH_SIZE)} entries queued before a push is due",
        ),
    )
    flush_interval: Duration | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_FLUSH_INTERVAL_MS,),
            type="`Duration`",
            default_doc=f"{_row(v.LOKI_FLUSH_INTERVAL_MS).default} ms",
            rule=f"{_millis(v.LOKI_FLUSH_INTERVAL_MS)}, whole milliseconds: "
            "the oldest queued entry's age at which a push is due",
        ),
    )
    flush: Flush | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_FLUSH,),
            type="`str`",
            default_doc=f"`{v.DEFAULT_FLUSH!r}`".replace("'", '"'),
            rule="one of " + ", ".join(f'`"{m}"`' for m in v.FLUSH_MODES) + ": when an invoke's lines "
            "are pushed (see Flush modes); not together with `ship_before_freeze`",
        ),
    )
    ship_before_freeze: bool | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_FLUSH,),
            type="`bool`",
            default_doc=_DASH,
            rule='older spelling: `True` is `flush="end_of_invoke"`, `False` is `flush="batch"`; '
            "not together with `flush`",
        ),
    )
    dense_gap: Duration | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_DENSE_GAP_MS,),
            type="`Duration`",
            default_doc=f"{_row(v.LOKI_DENSE_GAP_MS).default} ms",
            rule=f"{_millis(v.LOKI_DENSE_GAP_MS)}, whole milliseconds: `adaptive` "
            f"counts an invoke as dense when it starts within this gap of the previous one's end "
            f"({v.DENSE_STREAK} in a row ship between invokes); 0 always ships before the freeze",
        ),
    )
    high_water_percent: int | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_HIGH_WATER_PERCENT,),
            type="`int`",
            default_doc=f"`{_row(v.LOKI_HIGH_WATER_PERCENT).default}`",
            rule=f"{_counts(v.LOKI_HIGH_WATER_PERCENT)}: push before the next invoke "
            "whenever the held bytes reach this percentage of `max_buffer_bytes` (lower while "
            "recent invokes wrote more than the room above it)",
        ),
    )
    telemetry_types: Sequence[str] | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_TELEMETRY_TYPES,),
            type="`Sequence[str]`",
            default_doc="`(" + ", ".join(f'"{t}"' for t in v.DEFAULT_TELEMETRY_TYPES) + ",)`",
            rule="non-empty subset of " + ", ".join(f"`{t}`" for t in v.TELEMETRY_TYPES),
        ),
    )
    buffering: TelemetryBuffering | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_BUFFER_MAX_ITEMS, v.LOKI_BUFFER_MAX_BYTES, v.LOKI_BUFFER_TIMEOUT_MS),
            type="`TelemetryBuffering`",
            default_doc="AWS defaults",
            rule="Telemetry API limits: "
            f"`max_items` {_counts(v.LOKI_BUFFER_MAX_ITEMS)}; "
            f"`max_bytes` (`int` or `Size`) {_counts(v.LOKI_BUFFER_MAX_BYTES)}; "
            f"`timeout` (`Duration`) {_millis(v.LOKI_BUFFER_TIMEOUT_MS)}",
        ),
    )
    labels: Mapping[str, str] | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_LABELS,),
            type="`Mapping[str, str]`",
            default_doc="none",
            rule="names match `[a-zA-Z_][a-zA-Z0-9_]*`, don't start with `__`, aren't "
            + ", ".join(f"`{r}`" for r in v.RESERVED_LABELS)
            + f"; non-empty values; at most {v.MAX_LABELS - len(v.RESERVED_LABELS)}. Low cardinality only",
        ),
    )
    tenant_id: str | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_TENANT_ID,),
            type="`str`",
            default_doc="none",
            rule=f"sent as `X-Scope-OrgID`; 1{_DASH}150 characters from `A-Z a-z 0-9 ! - _ . * ' ( )`, "
            "not `.` or `..`",
        ),
    )
    basic_auth_secret: CredentialSource | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_BASIC_AUTH_SECRET_ARN,),
            type="`ISecret` or `IParameter`",
            default_doc="none",
            rule='holds `user:password` or `{"username": ..., "password": ...}`; the ARN is written, '
            "never the value; not together with `bearer_token_secret`",
        ),
    )
    bearer_token_secret: CredentialSource | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_BEARER_TOKEN_SECRET_ARN,),
            type="`ISecret` or `IParameter`",
            default_doc="none",
            rule="holds the token; the ARN is written, never the value; not together with "
            "`basic_auth_secret`",
        ),
    )
    max_buffer_bytes: int | Size | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_MAX_BUFFER_BYTES,),
            type="`int` or `Size`",
            default_doc=f"{_row(v.LOKI_MAX_BUFFER_BYTES).default // _MIB} MiB",
            rule=f"{_row(v.LOKI_MAX_BUFFER_BYTES).minimum // _KIB} KiB{_DASH}"
            f"{_row(v.LOKI_MAX_BUFFER_BYTES).maximum // _MIB} MiB of queued log "
            "bytes held in memory; beyond it the oldest are dropped, counted and reported",
        ),
    )
    max_line_bytes: int | Size | None = field(
        default=None,
        metadata=_doc(
            env=(v.LOKI_MAX_LINE_BYTES,),
            type="`int` or `Size`",
            default_doc=f"{_row(v.LOKI_MAX_LINE_BYTES).default:,}",
            rule=f"{_counts(v.LOKI_MAX_LINE_BYTES)}; "
            "longer lines are split with a marker",
        ),
    )
    disable_cloudwatch_logs: bool = field(
        default=False,
        metadata=_doc(
            env=(),
            type="`bool`",
            default_doc="`False`",
            rule="adds an explicit IAM `Deny` of `logs:CreateLogStream` / `logs:PutLogEvents` to each "
            "instrumented function's role",
        ),
    )
    extension: Extension = field(
        default="auto",
        metadata=_doc(
            env=(),
            type="`str`",
            default_doc='`"auto"`',
            rule=f'`"auto"`: Python 3.10{_DASH}3.13 get the Python build, every other runtime the native '
            f'build; `"python"`: Python 3.10{_DASH}3.13 only; `"native"`: the native build everywhere',
        ),
    )
    include: Sequence[Selector] | None = field(
        default=None,
        metadata=_doc(
            env=(),
            type="`Sequence[IConstruct \\| Callable]`",
            default_doc="everything",
            rule="only instrument functions selected by one entry (a construct selects itself and "
            "everything below it; a predicate is called with the function)",
        ),
    )
    exclude: Sequence[Selector] | None = field(
        default=None,
        metadata=_doc(
            env=(),
            type="same as `include`",
            default_doc="nothing",
            rule="never instrument (nor warn about) functions selected by one entry; wins over `include`",
        ),
    )
    layer: lambda_.ILayerVersion | str | None = field(
        default=None,
        metadata=_doc(
            env=(),
            type="`ILayerVersion` or `str`",
            default_doc="one layer per stack and build",
            rule="the Python build's layer: your own layer object or a layer *version* ARN "
            "(see `native_layers` for the native build)",
        ),
    )
    native_layers: Mapping[str, lambda_.ILayerVersion | str] | None = field(
        default=None,
        metadata=_doc(
            env=(),
            type="`Mapping[str, ILayerVersion \\| str]`",
            default_doc="one layer per stack and architecture",
            rule='the native build\'s layers by architecture (`"x86_64"`, `"arm64"`): layer objects or '
            "layer *version* ARNs, e.g. ones you publish once per account; an architecture left out "
            "gets the layer the aspect creates",
        ),
    )


#: Option names in declaration order.
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LokiOptions))


def env_vars_of(option: str) -> tuple[str, ...]:
    """The environment variables an option writes (empty for IAM and selection options)."""
    (f,) = [f for f in dataclasses.fields(LokiOptions) if f.name == option]
    return tuple(f.metadata["env"])


def param_docs() -> str:
    """``:param name: rule (default ...)`` lines for the docstrings of the public signatures."""
    lines = []
    for f in dataclasses.fields(LokiOptions):
        text = f"{f.metadata['rule']} (default: {f.metadata['default']})".replace("`", "").replace("\\|", "|")
        lines.append(f":param {f.name}: {text}")
    return "\n".join(lines)


def options_table_markdown() -> str:
    """The README's options table, generated from :class:`LokiOptions`."""
    rows = [
        "| option | type | default | environment variable | rule (checked at synth time) |",
        "|---|---|---|---|---|",
    ]
    for f in dataclasses.fields(LokiOptions):
        env = ", ".join(f"`{name}`" for name in f.metadata["env"]) or _DASH
        rule = f.metadata["rule"]
        rows.append(f"| `{f.name}` | {f.metadata['type']} | {f.metadata['default']} | {env} | {rule} |")
    return "\n".join(rows) + "\n"
