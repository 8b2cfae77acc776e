"""The contract between the CDK construct and the extension: environment-variable
names, their defaults and their allowed ranges.

This is the ONE place these are defined. The extension reads its configuration
through these names; the construct (``loki_telemetry_construct``) imports this
very module to write them. Every integer variable's default and range is one row of
:data:`SETTINGS`. Standard library only, nothing runs at import time.
"""

from __future__ import annotations


class Setting:
    """One integer variable: its default and its allowed range, both ends included.

    A plain frozen class, not a dataclass or NamedTuple: this module is imported on every cold
    start, and ``dataclasses`` / ``typing`` would cost milliseconds there
    (tests/extension/test_init_imports.py).
    """

    __slots__ = ("default", "maximum", "minimum", "name", "unit")
    name: str
    default: int
    minimum: int
    maximum: int
    #: What the number counts ("entries", "ms", "percent", "bytes", "items"); the construct
    #: takes a ``Duration`` for "ms" and a ``Size`` or an int for "bytes".
    unit: str

    def __init__(self, name: str, default: int, minimum: int, maximum: int, unit: str) -> None:
        values = {"name": name, "default": default, "minimum": minimum, "maximum": maximum, "unit": unit}
        for attr, value in values.items():
            object.__setattr__(self, attr, value)  # past the __setattr__ that keeps it frozen

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Setting is frozen")

    def __repr__(self) -> str:
        return (f"Setting({self.name!r}, default={self.default}, minimum={self.minimum}, "
                f"maximum={self.maximum}, unit={self.unit!r})")


# --- Where to push ---------------------------------------------------------
#: Host or IP of a Loki; means ``http://<LOKI_IP>:3100/loki/api/v1/push`` (the first release's variable).
LOKI_IP = "LOKI_IP"
#: Full push URL, http or https (e.g. Grafana Cloud). Exactly one of LOKI_IP / LOKI_URL.
LOKI_URL = "LOKI_URL"
LOKI_IP_PORT = 3100
LOKI_PUSH_PATH = "/loki/api/v1/push"

# --- Batching and flushing ---------------------------------------------------
#: Entries queued before a push is due (the first release's variable and meaning).
DISPATCH_MIN_BATCH_SIZE = "DISPATCH_MIN_BATCH_SIZE"

#: Oldest queued entry's age (ms) at which a push is due even below the batch size.
LOKI_FLUSH_INTERVAL_MS = "LOKI_FLUSH_INTERVAL_MS"

#: When an invoke's lines are pushed (see README "Flush modes"):
#:   adaptive       sparse invokes: before the freeze (as end_of_invoke); dense invokes: by the
#:                  background sender in the thawed time between invokes, no per-invoke wait
#:   end_of_invoke  after every invoke, wait (bounded by its deadline) for platform.runtimeDone,
#:                  push, then call next
#:   batch          only the background sender (size / age triggers) while thawed
#: Lambda Managed Instances are never frozen: they always flush on time and size.
LOKI_FLUSH = "LOKI_FLUSH"
FLUSH_MODES = ("adaptive", "end_of_invoke", "batch")
DEFAULT_FLUSH = "adaptive"

#: Legacy switch, read only when LOKI_FLUSH is unset: "true" means end_of_invoke, "false" batch.
LOKI_SHIP_BEFORE_FREEZE = "LOKI_SHIP_BEFORE_FREEZE"
DEFAULT_SHIP_BEFORE_FREEZE = False

#: adaptive: an invoke counts as dense when it arrives within this many ms of the previous
#: invoke's end (its platform.runtimeDone); DENSE_STREAK dense invokes in a row switch to
#: shipping between invokes. 0 = always ship before the freeze.
LOKI_DENSE_GAP_MS = "LOKI_DENSE_GAP_MS"
DENSE_STREAK = 3

#: Every mode: before calling next, push first when the held bytes reach this percentage
#: of LOKI_MAX_BUFFER_BYTES (so a burst never waits for a freeze with the buffer near full);
#: lower while recent invokes wrote more than the room above it (invoke_volume.py).
LOKI_HIGH_WATER_PERCENT = "LOKI_HIGH_WATER_PERCENT"

#: Upper bound on queued log bytes held in memory; when full the oldest are dropped and counted.
LOKI_MAX_BUFFER_BYTES = "LOKI_MAX_BUFFER_BYTES"

# --- Telemetry API subscription ---------------------------------------------
#: Comma-separated subset of TELEMETRY_TYPES.
LOKI_TELEMETRY_TYPES = "LOKI_TELEMETRY_TYPES"
TELEMETRY_TYPES = ("platform", "function", "extension")
DEFAULT_TELEMETRY_TYPES = ("function",)

#: Telemetry API buffering: maxItems, maxBytes and timeoutMs of the subscription.
LOKI_BUFFER_MAX_ITEMS = "LOKI_BUFFER_MAX_ITEMS"
LOKI_BUFFER_MAX_BYTES = "LOKI_BUFFER_MAX_BYTES"
LOKI_BUFFER_TIMEOUT_MS = "LOKI_BUFFER_TIMEOUT_MS"

# --- Labels, tenant and credentials ------------------------------------------
#: JSON object of static extra labels, e.g. '{"env": "prod"}'. Low cardinality only.
LOKI_LABELS = "LOKI_LABELS"
#: Labels the extension sets itself; LOKI_LABELS may not use them. Every stream has
#: source="lambda" and function=<AWS_LAMBDA_FUNCTION_NAME>; records that are not the
#: function's own output (platform events, extension logs, the extension's drop reports)
#: also carry type="platform" | "extension".
RESERVED_LABELS = ("source", "function", "type")
SOURCE_LABEL_VALUE = "lambda"
#: Loki's default limit on label names per stream.
MAX_LABELS = 15
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"

#: Sent as X-Scope-OrgID.
LOKI_TENANT_ID = "LOKI_TENANT_ID"
#: ARN of a Secrets Manager secret or SSM SecureString holding "user:password"
#: or {"username": ..., "password": ...}.
LOKI_BASIC_AUTH_SECRET_ARN = "LOKI_BASIC_AUTH_SECRET_ARN"
#: ARN of a Secrets Manager secret or SSM SecureString holding a bearer token.
LOKI_BEARER_TOKEN_SECRET_ARN = "LOKI_BEARER_TOKEN_SECRET_ARN"

# --- Lines -------------------------------------------------------------------
#: Longest line pushed as one entry; longer lines are split with a marker.
LOKI_MAX_LINE_BYTES = "LOKI_MAX_LINE_BYTES"

# --- Integer settings: default and range, one row each ------------------------
_KIB = 1024
_MIB = 1024 * 1024

#: Every integer variable, keyed by its name. Both builds fall back to ``default`` (and say so)
#: for a value outside ``minimum``..``maximum``; the construct refuses it at synth time.
#: Read-only by convention (a plain dict: ``types.MappingProxyType`` would be one more import).
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(DISPATCH_MIN_BATCH_SIZE, default=100, minimum=1, maximum=10_000, unit="entries"),
        # 500 ms: with the Telemetry API's buffering and one push, a line is in Loki within 1 s.
        Setting(LOKI_FLUSH_INTERVAL_MS, default=500, minimum=1, maximum=60_000, unit="ms"),
        Setting(LOKI_DENSE_GAP_MS, default=200, minimum=0, maximum=60_000, unit="ms"),
        Setting(LOKI_HIGH_WATER_PERCENT, default=50, minimum=1, maximum=100, unit="percent"),
        Setting(LOKI_MAX_BUFFER_BYTES, default=4 * _MIB, minimum=64 * _KIB, maximum=256 * _MIB, unit="bytes"),
        # The Telemetry API's own limits. The timeout's default is 25 ms (the minimum) in every
        # flush mode but batch: those wait for runtimeDone, which the API holds back that long.
        Setting(LOKI_BUFFER_MAX_ITEMS, default=1_000, minimum=1_000, maximum=10_000, unit="items"),
        Setting(LOKI_BUFFER_MAX_BYTES, default=262_144, minimum=262_144, maximum=1_048_576, unit="bytes"),
        Setting(LOKI_BUFFER_TIMEOUT_MS, default=100, minimum=25, maximum=30_000, unit="ms"),
        # Loki's default max_line_size is "256KB" (parsed as 256,000 bytes).
        Setting(LOKI_MAX_LINE_BYTES, default=256_000, minimum=1_024, maximum=256_000, unit="bytes"),
    )
}

#: Every variable above that the construct may set, for tests and documentation.
ALL = (
    LOKI_IP,
    LOKI_URL,
    DISPATCH_MIN_BATCH_SIZE,
    LOKI_FLUSH_INTERVAL_MS,
    LOKI_FLUSH,
    LOKI_SHIP_BEFORE_FREEZE,
    LOKI_DENSE_GAP_MS,
    LOKI_HIGH_WATER_PERCENT,
    LOKI_MAX_BUFFER_BYTES,
    LOKI_TELEMETRY_TYPES,
    LOKI_BUFFER_MAX_ITEMS,
    LOKI_BUFFER_MAX_BYTES,
    LOKI_BUFFER_TIMEOUT_MS,
    LOKI_LABELS,
    LOKI_TENANT_ID,
    LOKI_BASIC_AUTH_SECRET_ARN,
    LOKI_BEARER_TOKEN_SECRET_ARN,
    LOKI_MAX_LINE_BYTES,
)

# --- Read from Lambda (not set by the construct) ------------------------------
#: Lambda Managed Instances set it to MANAGED_INSTANCES: register SHUTDOWN only, no freeze.
AWS_LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
MANAGED_INSTANCES = "lambda-managed-instances"

# --- What the extension writes (both builds, same text) -----------------------
#: The library's version (pyproject.toml reads it from here); the User-Agent is
#: "loki-telemetry-extension/<EXTENSION_VERSION>" in both builds.
EXTENSION_VERSION = "0.2.0"
#: Prefix of every diagnostic line; lines with it are never shipped back (no loop).
DIAG_MARKER = "[loki-telemetry-extension]"
#: Structured-metadata keys on each entry (in the line as ` key=value` on a Loki without it).
METADATA_REQUEST_ID = "request_id"
METADATA_LEVEL = "level"
METADATA_TENANT_ID = "tenant_id"
#: Drop counters, in report order: "log entries lost so far: buffer_full=0, ..."
DROP_REASONS = ("buffer_full", "rejected_by_loki", "shutdown_deadline", "lambda_logs_dropped")
