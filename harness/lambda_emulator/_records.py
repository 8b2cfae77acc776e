"""Telemetry API record shapes (schema 2022-12-13): timestamps and platform events.

The emulator and its tests spell the event types (``platform.start``, ...) as Lambda's
documentation does, not through the extension's ``platform_events`` constants: the emulator
stands in for Lambda, so a misspelt constant in the extension must disagree with it, not
agree by construction.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any

#: Lambda reports the platform version of the function as "$LATEST" unless published.
FUNCTION_VERSION = "$LATEST"
#: Reason text of platform.logsDropped (Lambda documents the fields, not the wording).
LOGS_DROPPED_REASON = "Consumer seems to have fallen behind as it has not acknowledged receipt of logs."


_second_cache: tuple[int, str] = (-1, "")
# ensure_ascii (the default) makes the length in characters the length in bytes.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def iso_time(epoch_s: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds, as Lambda stamps every telemetry event."""
    global _second_cache
    now = time.time() if epoch_s is None else epoch_s
    # Split and round the way datetime.fromtimestamp does (microseconds, half-even).
    frac, whole = math.modf(now)
    sec, micros = int(whole), round(frac * 1_000_000)
    if micros >= 1_000_000:
        sec, micros = sec + 1, micros - 1_000_000
    elif micros < 0:
        sec, micros = sec - 1, micros + 1_000_000
    cached_sec, prefix = _second_cache
    if sec != cached_sec:
        # Formatting is the costly part and changes once a second: cache it.
        prefix = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache = (sec, prefix)
    return f"{prefix}.{micros // 1000:03d}Z"


def event(type_: str, record: Any, epoch_s: float | None = None) -> dict[str, Any]:
    """One element of a delivered JSON array."""
    return {"time": iso_time(epoch_s), "type": type_, "record": record}


def encode(doc: Any) -> str:
    """Compact JSON, as delivered."""
    return _ENCODER.encode(doc)


def event_size(evt: dict[str, Any]) -> int:
    """Bytes the event takes in a delivery body (what maxBytes counts)."""
    return len(_ENCODER.encode(evt))


def json_log_record(line: str, epoch_s: float, level: str = "INFO") -> Any:
    """A function/extension line under the JSON log format.

    Lambda passes a line that already is a JSON object through as an object and wraps
    anything else as ``{timestamp, level, message}``.
    """
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    return {"timestamp": iso_time(epoch_s), "level": level, "message": line.rstrip("\n")}


#: AWS_LAMBDA_INITIALIZATION_TYPE and initializationType: classic, and Lambda Managed Instances.
ON_DEMAND = "on-demand"
MANAGED_INSTANCES = "lambda-managed-instances"


def init_start(function_name: str, runtime_version: str, init_type: str = ON_DEMAND) -> dict[str, Any]:
    return {
        "initializationType": init_type,
        "phase": "init",
        "runtimeVersion": runtime_version,
        "functionName": function_name,
        "functionVersion": FUNCTION_VERSION,
    }


def init_runtime_done(
    status: str, error_type: str | None = None, init_type: str = ON_DEMAND
) -> dict[str, Any]:
    rec: dict[str, Any] = {"initializationType": init_type, "phase": "init", "status": status}
    if error_type:
        rec["errorType"] = error_type
    return rec


def init_report(
    status: str, duration_ms: float, error_type: str | None = None, init_type: str = ON_DEMAND
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "initializationType": init_type,
        "phase": "init",
        "status": status,
        "metrics": {"durationMs": round(duration_ms, 3)},
    }
    if error_type:
        rec["errorType"] = error_type
    return rec


def _with_tenant(rec: dict[str, Any], tenant_id: str | None) -> dict[str, Any]:
    # Tenant isolation: platform.start/runtimeDone/report carry the invoke's tenantId.
    if tenant_id is not None:
        rec["tenantId"] = tenant_id
    return rec


def start(request_id: str, tenant_id: str | None = None, function_arn: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"requestId": request_id}
    _with_tenant(rec, tenant_id)
    rec["version"] = FUNCTION_VERSION
    if function_arn is not None:
        # Managed Instances' platform.start names the function's ARN too.
        rec["functionArn"] = function_arn
    return rec


def runtime_done(
    request_id: str,
    status: str,
    duration_ms: float,
    produced_bytes: int,
    error_type: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    rec: dict[str, Any] = _with_tenant({"requestId": request_id}, tenant_id)
    rec["status"] = status
    rec["metrics"] = {"durationMs": round(duration_ms, 3), "producedBytes": produced_bytes}
    if error_type:
        rec["errorType"] = error_type
    return rec


def report(
    request_id: str,
    status: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
    error_type: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 3),
        # Lambda bills in 1 ms steps, rounding up.
        "billedDurationMs": max(1, int(-(-duration_ms // 1))),
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    rec: dict[str, Any] = _with_tenant({"requestId": request_id}, tenant_id)
    rec.update({"status": status, "metrics": metrics})
    if error_type:
        rec["errorType"] = error_type
    return rec


def report_managed(
    request_id: str,
    status: str,
    duration_ms: float,
    error_type: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """platform.report on Managed Instances: no billing or memory figures (EC2 pricing)."""
    rec: dict[str, Any] = _with_tenant({"requestId": request_id}, tenant_id)
    rec.update({"status": status, "metrics": {"durationMs": round(duration_ms, 3)}})
    if error_type:
        rec["errorType"] = error_type
    return rec


def extension(name: str, events: list[str]) -> dict[str, Any]:
    return {"name": name, "state": "Ready", "events": events}


def telemetry_subscription(name: str, types: list[str]) -> dict[str, Any]:
    return {"name": name, "state": "Subscribed", "types": types}


def logs_dropped(dropped_records: int, dropped_bytes: int) -> dict[str, Any]:
    return {"reason": LOGS_DROPPED_REASON, "droppedRecords": dropped_records, "droppedBytes": dropped_bytes}
