"""Telemetry API event and record type names (one definition, used by every module)."""

from __future__ import annotations

#: Telemetry API ``type`` of the function's and extensions' own output.
FUNCTION = "function"
EXTENSION = "extension"
#: Prefix of every platform event type.
PREFIX = "platform."
INIT_START = "platform.initStart"
INIT_RUNTIME_DONE = "platform.initRuntimeDone"
INIT_REPORT = "platform.initReport"
START = "platform.start"
RUNTIME_DONE = "platform.runtimeDone"
REPORT = "platform.report"
LOGS_DROPPED = "platform.logsDropped"

#: Extensions API event types (``next`` answers).
INVOKE = "INVOKE"
SHUTDOWN = "SHUTDOWN"
