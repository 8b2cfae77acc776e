"""Loki's query HTTP API, read side: parameters and the JSON response shapes.

Parameter rules follow ``pkg/loghttp/params.go`` (timestamps as ns integers,
seconds with a decimal point, or RFC3339; ``limit`` default 100; ``direction``
default backward; default range the last hour).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .model import StoredEntry
from .selector import Selector

DEFAULT_LIMIT = 100
DEFAULT_SINCE_S = 3600.0
#: Loki's /labels and /label/<name>/values default to the last 6 hours.
DEFAULT_LABELS_SINCE_S = 6 * 3600.0
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
           "d": 86400.0, "w": 604800.0, "y": 365 * 86400.0}


class QueryError(ValueError):
    """A bad query parameter (HTTP 400, message shown to the client)."""


def parse_time(value: str | None, default_ns: int) -> int:
    """Loki's parseTimestamp: '' -> default; '1.5' -> float seconds; <=10 digits -> seconds;
    other integers -> nanoseconds; else RFC3339."""
    if value is None or value == "":
        return default_ns
    if "." in value:
        try:
            f = float(value)
        except ValueError:
            pass
        else:
            s = math.floor(f)
            frac = round((f - s) * 1000) / 1000
            return int(s) * 1_000_000_000 + int(frac * 1_000_000_000)
    try:
        n = int(value, 10)
    except ValueError:
        return _rfc3339_ns(value)
    return n * 1_000_000_000 if len(value.lstrip("-")) <= 10 else n


def _rfc3339_ns(value: str) -> int:
    """RFC3339 with up to nanosecond fractions (Go's RFC3339Nano); Python's parser stops at microseconds."""
    m = _RFC3339.fullmatch(value)
    if not m:
        raise QueryError(f'cannot parse "{value}" to a valid timestamp')
    base, frac, zone = m.groups()
    try:
        dt = datetime.fromisoformat(base + ("+00:00" if zone in ("Z", "z") else zone))
    except ValueError as exc:
        raise QueryError(f'cannot parse "{value}" to a valid timestamp') from exc
    nanos = int((frac or "").ljust(9, "0")[:9] or "0")
    return int(dt.timestamp()) * 1_000_000_000 + nanos


def parse_duration_s(value: str) -> float:
    """Prometheus/Loki durations: '1h', '30m', '1h30m', '500ms'."""
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(value) or not value:
        raise QueryError(f'cannot parse "{value}" to a valid duration')
    return total


@dataclass(frozen=True)
class RangeParams:
    start_ns: int
    end_ns: int
    limit: int
    forward: bool


def range_params(params: Mapping[str, str], now_ns: int, max_limit: int) -> RangeParams:
    end = parse_time(params.get("end"), now_ns)
    since = params.get("since")
    since_s = parse_duration_s(since) if since else DEFAULT_SINCE_S
    start = parse_time(params.get("start"), end - int(since_s * 1e9))
    if end < start:
        raise QueryError("end timestamp must not be before or equal to start time")
    raw_limit = params.get("limit")
    try:
        limit = DEFAULT_LIMIT if raw_limit in (None, "") else int(raw_limit)
    except ValueError as exc:
        raise QueryError(f'strconv.ParseUint: parsing "{raw_limit}": invalid syntax') from exc
    if limit <= 0:
        raise QueryError("limit must be a positive value")
    if limit > max_limit:
        raise QueryError(
            f"max entries limit per query exceeded, limit > max_entries_limit ({limit} > {max_limit})"
        )
    direction = (params.get("direction") or "backward").lower()
    if direction not in ("forward", "backward"):
        raise QueryError(f'invalid direction "{params.get("direction")}"')
    return RangeParams(start, end, limit, direction == "forward")


def streams_result(
    entries: Sequence[StoredEntry], p: RangeParams, *, categorize_labels: bool
) -> dict[str, Any]:
    """Loki's ``resultType: streams`` body for a log query.

    The first `limit` entries in `direction` across all matching streams, grouped
    by stream. Without the ``categorize-labels`` encoding flag Loki 3 folds each
    entry's structured metadata into its stream's labels, so entries that differ
    in metadata come back as separate streams; with it, metadata is the third
    element of each value.
    """
    ordered = sorted(entries, key=lambda e: e.ts_ns, reverse=not p.forward)[: p.limit]
    groups: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
    labels_of: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for e in ordered:
        if categorize_labels:
            labels = dict(e.labels)
            value: list[Any] = [str(e.ts_ns), e.line]
            if e.metadata:
                value.append({"structuredMetadata": dict(e.metadata)})
        else:
            labels = {**e.labels, **e.metadata}
            value = [str(e.ts_ns), e.line]
        key = tuple(sorted(labels.items()))
        labels_of.setdefault(key, dict(sorted(labels.items())))
        groups.setdefault(key, []).append(value)
    result = [{"stream": labels_of[k], "values": v} for k, v in groups.items()]
    data: dict[str, Any] = {
        "resultType": "streams",
        "result": result,
        "stats": {"summary": {"totalEntriesReturned": len(ordered)}},
    }
    if categorize_labels:
        data["encodingFlags"] = ["categorize-labels"]
    return {"status": "success", "data": data}


def label_names(label_sets: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    names = sorted({n for ls in label_sets for n in ls})
    return {"status": "success", "data": names}


def selector_or_none(params: Mapping[str, str], key: str = "query") -> str | None:
    q = params.get(key)
    return q if q else None


__all__ = [
    "QueryError",
    "RangeParams",
    "Selector",
    "label_names",
    "parse_duration_s",
    "parse_time",
    "range_params",
    "streams_result",
]
