"""The contract between the CDK construct and the extension: environment-variable
names, their defaults and their allowed ranges.

This is the ONE place these are defined. The extension reads its configuration
through these names; the construct (``loki_telemetry_construct``) imports this
very module to write them. Standard library only, nothing runs at import time.
"""

from __future__ import annotations

# --- Where to push ---------------------------------------------------------
#: Host or IP of a Loki; means ``http://<LOKI_IP>:3100/loki/api/v1/push`` (the seed's variable).
LOKI_IP = "LOKI_IP"
#: Full push URL, http or https (e.g. Grafana Cloud). Exactly one of LOKI_IP / LOKI_URL.
LOKI_URL = "LOKI_URL"
LOKI_IP_PORT = 3100
LOKI_PUSH_PATH = "/loki/api/v1/push"

# --- Batching and flushing ---------------------------------------------------
#: Entries queued before a push is due (the seed's variable and semantics).
DISPATCH_MIN_BATCH_SIZE = "DISPATCH_MIN_BATCH_SIZE"
DEFAULT_BATCH_SIZE = 100
MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 10_000

#: Oldest queued entry's age (ms) at which a push is due even below the batch size.
LOKI_FLUSH_INTERVAL_MS = "LOKI_FLUSH_INTERVAL_MS"
DEFAULT_FLUSH_INTERVAL_MS = 1_000
MIN_FLUSH_INTERVAL_MS = 1
MAX_FLUSH_INTERVAL_MS = 60_000

#: "true" ships each invoke's logs before the environment freezes (waits, bounded,
#: for platform.runtimeDone of the request). Default "false": batch mode.
LOKI_SHIP_BEFORE_FREEZE = "LOKI_SHIP_BEFORE_FREEZE"
DEFAULT_SHIP_BEFORE_FREEZE = False

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
    LOKI_SHIP_BEFORE_FREEZE,
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
