"""The contract between the CDK construct and the extension: environment-variable
names, their defaults and their allowed ranges.

This is the ONE place these are defined. The extension reads its configuration
through these names; the construct (``loki_telemetry_construct``) imports this
very module to write them. Standard library only, nothing runs at import time.
"""

from __future__ import annotations

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
DEFAULT_BATCH_SIZE = 100
MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 10_000

#: Oldest queued entry's age (ms) at which a push is due even below the batch size.
#: 500 ms: with the Telemetry API's buffering and one push, a line is in Loki within 1 s.
LOKI_FLUSH_INTERVAL_MS = "LOKI_FLUSH_INTERVAL_MS"
DEFAULT_FLUSH_INTERVAL_MS = 500
MIN_FLUSH_INTERVAL_MS = 1
MAX_FLUSH_INTERVAL_MS = 60_000

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
DEFAULT_DENSE_GAP_MS = 200
MIN_DENSE_GAP_MS = 0
MAX_DENSE_GAP_MS = 60_000
DENSE_STREAK = 3

#: Every mode: before calling next, push first when the queued bytes reach this percentage
#: of LOKI_MAX_BUFFER_BYTES (so a burst never waits for a freeze with the buffer near full).
LOKI_HIGH_WATER_PERCENT = "LOKI_HIGH_WATER_PERCENT"
DEFAULT_HIGH_WATER_PERCENT = 50
MIN_HIGH_WATER_PERCENT = 1
MAX_HIGH_WATER_PERCENT = 100

#: Upper bound on queued log bytes held in memory; when full the oldest are dropped and counted.
LOKI_MAX_BUFFER_BYTES = "LOKI_MAX_BUFFER_BYTES"
DEFAULT_MAX_BUFFER_BYTES = 4 * 1024 * 1024
MIN_MAX_BUFFER_BYTES = 64 * 1024
MAX_MAX_BUFFER_BYTES = 256 * 1024 * 1024

# --- Telemetry API subscription ---------------------------------------------
#: Comma-separated subset of TELEMETRY_TYPES.
LOKI_TELEMETRY_TYPES = "LOKI_TELEMETRY_TYPES"
TELEMETRY_TYPES = ("platform", "function", "extension")
DEFAULT_TELEMETRY_TYPES = ("function",)

#: Telemetry API buffering (AWS limits: maxItems 1000..10000, maxBytes 262144..1048576,
#: timeoutMs 25..30000).
LOKI_BUFFER_MAX_ITEMS = "LOKI_BUFFER_MAX_ITEMS"
DEFAULT_BUFFER_MAX_ITEMS = 1_000
MIN_BUFFER_MAX_ITEMS = 1_000
MAX_BUFFER_MAX_ITEMS = 10_000

LOKI_BUFFER_MAX_BYTES = "LOKI_BUFFER_MAX_BYTES"
DEFAULT_BUFFER_MAX_BYTES = 262_144
MIN_BUFFER_MAX_BYTES = 262_144
MAX_BUFFER_MAX_BYTES = 1_048_576

LOKI_BUFFER_TIMEOUT_MS = "LOKI_BUFFER_TIMEOUT_MS"
DEFAULT_BUFFER_TIMEOUT_MS = 100
MIN_BUFFER_TIMEOUT_MS = 25
MAX_BUFFER_TIMEOUT_MS = 30_000

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
#: Loki's default max_line_size is "256KB" (parsed as 256,000 bytes).
LOKI_MAX_LINE_BYTES = "LOKI_MAX_LINE_BYTES"
DEFAULT_MAX_LINE_BYTES = 256_000
MIN_MAX_LINE_BYTES = 1_024
MAX_MAX_LINE_BYTES = 256_000

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
