"""Telemetry API deliveries → Loki entries.

An entry is a plain tuple ``(stream, ts_ns, line, metadata)`` (see ``entries``; tuples,
not objects: this runs for every log line). ``metadata`` holds request id, level and
tenant id for Loki's structured metadata, or None.

Request ids come from the record itself (a JSON record's ``requestId``, the Text
format's request-id field, a platform event's ``requestId``). On classic Lambda one
request runs at a time, so a plain ``print`` line is tagged with the request of the
last ``platform.start``; on Managed Instances requests interleave and that guess would
be wrong, so it is never made there (``attribute_by_start=False``).
"""

from __future__ import annotations

import time

from . import platform_events as pe
from .batch import split_line
from .diag import MARKER
from .entries import (
    STREAM_EXTENSION,
    STREAM_FUNCTION,
    STREAM_PLATFORM,
    STREAM_TYPES,
    Entry,
    Metadata,
)
from .envvars import METADATA_LEVEL, METADATA_REQUEST_ID, METADATA_TENANT_ID

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["STREAM_EXTENSION", "STREAM_FUNCTION", "STREAM_PLATFORM", "STREAM_TYPES", "Converted", "Entry",
           "Metadata", "RecordConverter", "iso_to_ns", "render_platform"]

_REPORT_METRICS = (
    ("durationMs", "Duration", "ms"),
    ("billedDurationMs", "Billed Duration", "ms"),
    ("memorySizeMB", "Memory Size", "MB"),
    ("maxMemoryUsedMB", "Max Memory Used", "MB"),
    ("initDurationMs", "Init Duration", "ms"),
    ("restoreDurationMs", "Restore Duration", "ms"),
)
#: Bytes the inlined path keeps free for folded metadata (a text line's: level and a request id).
FOLD_ROOM = 256
_LEVELS = frozenset(("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"))


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (Howard Hinnant's algorithm; avoids importing datetime)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_prefix_cache: list[object] = ["", 0]  # last "YYYY-MM-DDTHH:MM:SS" seen and its epoch seconds


#: Loki's timestamps are int64 ns: 1970 to 2262. A time outside that is not a time: one such
#: entry would make Loki refuse its whole push request (a decode error, not one rejected entry).
MAX_TIMESTAMP_NS = (1 << 63) - 1


def iso_to_ns(value: object) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`` → ns since the epoch, None if not that shape
    or outside what Loki can store (before 1970, after 2262)."""
    if not isinstance(value, str) or len(value) < 19:
        return None
    # Fast path for Lambda's own shape "…:SS.mmmZ": lines of one delivery share the second.
    if len(value) == 24 and value[23] == "Z" and value[19] == "." and value[:19] == _prefix_cache[0]:
        ms = value[20:23]
        if ms.isdigit():
            return _prefix_cache[1] * 1_000_000_000 + int(ms) * 1_000_000  # type: ignore[operator]
    s = value
    try:
        if s[4] != "-" or s[7] != "-" or s[10] not in "Tt " or s[13] != ":" or s[16] != ":":
            return None
        year, month, day = int(s[0:4]), int(s[5:7]), int(s[8:10])
        hour, minute, sec = int(s[11:13]), int(s[14:16]), int(s[17:19])
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec < 61):
            return None
        i = 19
        frac_ns = 0
        if i < len(s) and s[i] in ".,":
            j = i + 1
            while j < len(s) and s[j].isdigit():
                j += 1
            digits = s[i + 1 : j]
            if not digits:
                return None
            frac_ns = int((digits + "000000000")[:9])
            i = j
        offset_s = 0
        rest = s[i:]
        if rest in ("Z", "z", ""):
            pass
        elif len(rest) in (5, 6) and rest[0] in "+-":
            hh, mm = int(rest[1:3]), int(rest[-2:])
            offset_s = (hh * 3600 + mm * 60) * (1 if rest[0] == "+" else -1)
        else:
            return None
    except ValueError:
        return None
    secs = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec - offset_s
    ns = secs * 1_000_000_000 + frac_ns
    if not 0 <= ns <= MAX_TIMESTAMP_NS:
        return None
    if offset_s == 0 and rest in ("Z", "z") and secs < MAX_TIMESTAMP_NS // 1_000_000_000:
        # (not the last second Loki can store: the fast paths add milliseconds unchecked)
        _prefix_cache[0], _prefix_cache[1] = s[:19], secs
    return ns


def _text_level_and_request(line: str) -> tuple[str | None, str | None]:
    """Level and request id of the Text format: the Python runtime's ``[LEVEL]\t<time>\t<rid>\t…``
    or the Node.js runtime's ``<time>\t<rid>\t<LEVEL>\t…``."""
    if line[:1] != "[":
        return _node_level_and_request(line)
    end = line.find("]", 1, 12)
    if end < 0:
        return None, None
    level = line[1:end]
    if level not in _LEVELS:
        level = level.upper()
        if level not in _LEVELS:
            return None, None
    rid = None
    if line.startswith("\t", end + 1):
        t2 = line.find("\t", end + 2, end + 64)  # after the time field
        if t2 > 0:
            t3 = line.find("\t", t2 + 9, t2 + 66)
            if t3 > 0:
                candidate = line[t2 + 1 : t3]
                if " " not in candidate:
                    rid = candidate
    return level, rid


def _node_level_and_request(line: str) -> tuple[str | None, str | None]:
    if len(line) < 24 or line[4] != "-" or line[10] != "T":
        return None, None
    t1 = line.find("\t", 19, 40)
    if t1 < 0:
        return None, None
    t2 = line.find("\t", t1 + 1, t1 + 66)
    if t2 < 0:
        return None, None
    t3 = line.find("\t", t2 + 1, t2 + 10)
    level = line[t2 + 1 : t3 if t3 > 0 else len(line)]
    if level not in _LEVELS:
        return None, None
    rid = line[t1 + 1 : t2]
    return level, (rid if rid and " " not in rid and rid != "undefined" else None)


def _ms(metrics: dict[str, Any], key: str) -> str | None:
    v = metrics.get(key)
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.2f}"
    return None


def render_platform(kind: str, record: Any) -> str:
    """A readable line in the spirit of CloudWatch's START/END/REPORT lines."""
    import json

    r: dict[str, Any] = record if isinstance(record, dict) else {}
    m = r.get("metrics")
    metrics: dict[str, Any] = m if isinstance(m, dict) else {}
    rid = r.get("requestId")
    if kind == pe.START:
        v = f" Version: {r['version']}" if "version" in r else ""
        return f"START RequestId: {rid}{v}"
    if kind == pe.RUNTIME_DONE:
        parts = [f"END RequestId: {rid}", f"Status: {r.get('status')}"]
        if (d := _ms(metrics, "durationMs")) is not None:
            parts.append(f"Duration: {d} ms")
        if "producedBytes" in metrics:
            parts.append(f"Produced Bytes: {metrics['producedBytes']}")
        if r.get("errorType"):
            parts.append(f"Error Type: {r['errorType']}")
        return "\t".join(parts)
    if kind == pe.REPORT:
        parts = [f"REPORT RequestId: {rid}"]
        for key, label, unit in _REPORT_METRICS:
            if key in metrics:
                v = metrics[key]
                parts.append(f"{label}: {_ms(metrics, key) if unit == 'ms' else v} {unit}")
        parts.append(f"Status: {r.get('status')}")
        if r.get("errorType"):
            parts.append(f"Error Type: {r['errorType']}")
        return "\t".join(parts)
    if kind == pe.INIT_START:
        return (f"INIT_START Runtime Version: {r.get('runtimeVersion')}\tPhase: {r.get('phase')}"
                f"\tType: {r.get('initializationType')}")
    if kind == pe.INIT_RUNTIME_DONE:
        err = f"\tError Type: {r['errorType']}" if r.get("errorType") else ""
        return f"INIT_RUNTIME_DONE Status: {r.get('status')}\tPhase: {r.get('phase')}{err}"
    if kind == pe.INIT_REPORT:
        return f"INIT_REPORT Init Duration: {_ms(metrics, 'durationMs')} ms\tPhase: {r.get('phase')}" + (
            f"\tStatus: {r['status']}" if "status" in r else "")
    if kind == pe.LOGS_DROPPED:
        return (f"LOGS_DROPPED Dropped Records: {r.get('droppedRecords')}\tDropped Bytes: "
                f"{r.get('droppedBytes')}\tReason: {r.get('reason')}")
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"{kind.replace(pe.PREFIX, '').upper()} {body}"


class Converted:
    """What one delivery yielded, besides entries: signals the lifecycle needs."""

    __slots__ = ("entries", "lambda_dropped_records", "runtime_done", "runtime_done_ns")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        #: Request ids whose platform.runtimeDone came, and (same index) that event's time.
        self.runtime_done: list[str] = []
        self.runtime_done_ns: list[int] = []
        self.lambda_dropped_records = 0


class RecordConverter:
    """Stateful in the request id it has seen start (to tag ``print`` lines, classic Lambda
    only) and in the repeat detection of the current millisecond."""

    def __init__(self, *, ship_platform: bool, ship_extension: bool, max_line_bytes: int,
                 attribute_by_start: bool = True) -> None:
        self.ship_platform = ship_platform
        self.ship_extension = ship_extension
        self.max_line_bytes = max_line_bytes
        self.attribute_by_start = attribute_by_start
        self.current_request_id: str | None = None
        self._meta_cache: dict[tuple[str | None, ...], Metadata] = {}
        self._cur_ms = [0] * len(STREAM_TYPES)
        self._used: list[dict[str, int]] = [{} for _ in STREAM_TYPES]

    def convert(self, body: bytes) -> Converted:
        """Never raises: a malformed delivery or record is skipped (``bad`` is not counted as loss)."""
        import json

        out = Converted()
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return out
        if not isinstance(items, list):
            return out
        append = out.entries.append
        # Short enough that neither UTF-8 (4 bytes a char at most) nor the metadata folded into
        # the line for a Loki without structured metadata can take it over the limit.
        limit4 = (self.max_line_bytes - FOLD_ROOM) // 4
        cache = _prefix_cache
        meta_cache = self._meta_cache
        cur_ms = self._cur_ms[STREAM_FUNCTION]
        used = self._used[STREAM_FUNCTION]
        request_id = self.current_request_id
        for item in items:
            try:
                # Inlined hot path (one text line of the function, Lambda's time format, no
                # split needed): the same steps as _one/_add/_ts/_meta without the calls.
                if type(item) is dict and item.get("type") == pe.FUNCTION:
                    record = item.get("record")
                    t = item.get("time")
                    if (type(record) is str and type(t) is str and t[:19] == cache[0] and len(t) == 24
                            and t[19] == "." and t[23] == "Z" and len(record) <= limit4):
                        ms_text = t[20:23]
                        if ms_text.isdigit():
                            ms = cache[1] * 1000 + int(ms_text)  # type: ignore[operator]
                            ts = ms * 1_000_000
                            line = record[:-1] if record[-1:] == "\n" else record
                            if line[-1:] == "\r":
                                line = line[:-1]
                            if line[:1] == "[" or "0" <= line[:1] <= "9":
                                level, rid = _text_level_and_request(line)
                                rid = rid or request_id
                                meta = (meta_cache.get((level, rid)) or self._meta(level, rid)) \
                                    if (level or rid) else None
                            elif request_id:
                                meta = meta_cache.get((None, request_id)) or self._meta(None, request_id)
                            else:
                                meta = None
                            # repeat detection (see _ts), inlined
                            if ms > cur_ms:
                                cur_ms = ms
                                used = {line: ts}
                            elif ms == cur_ms:
                                prev = used.get(line)
                                if prev is not None and prev >= ts:
                                    ts = prev + 1
                                used[line] = ts
                            append((STREAM_FUNCTION, ts, line, meta))
                            continue
                # Anything else: sync the hoisted state, take the general path, reload it.
                self._cur_ms[STREAM_FUNCTION], self._used[STREAM_FUNCTION] = cur_ms, used
                try:
                    self._one(item, out)
                finally:
                    cur_ms, used = self._cur_ms[STREAM_FUNCTION], self._used[STREAM_FUNCTION]
                    request_id = self.current_request_id
            except Exception:
                continue
        self._cur_ms[STREAM_FUNCTION], self._used[STREAM_FUNCTION] = cur_ms, used
        return out

    def _meta(self, level: str | None, rid: str | None, tenant: str | None = None) -> Metadata:
        """One shared (never mutated) metadata dict per (level, request id, tenant): saves a
        dict per line here and lets batch render each distinct one once per push body."""
        key = (level, rid) if tenant is None else (level, rid, tenant)
        m = self._meta_cache.get(key)
        if m is None:
            if len(self._meta_cache) > 64:  # old requests' entries: keep the cache small
                self._meta_cache.clear()
            m = {}
            if rid:
                m[METADATA_REQUEST_ID] = rid
            if level:
                m[METADATA_LEVEL] = level
            if tenant:
                m[METADATA_TENANT_ID] = tenant
            self._meta_cache[key] = m
        return m

    def _ts(self, stream: int, ts: int, line: str) -> int:
        """Loki keeps one entry per identical (timestamp, line) in a stream, and the Telemetry
        API only has millisecond times: a line repeated within one millisecond would be lost.
        Such a repeat gets the next free nanosecond; every other entry keeps its event's own
        time exactly. Only the current millisecond of each stream is remembered."""
        ms = ts // 1_000_000
        if ms > self._cur_ms[stream]:
            self._cur_ms[stream] = ms
            self._used[stream] = {line: ts}
            return ts
        if ms < self._cur_ms[stream]:
            return ts  # an older straggler: rare, left alone
        used = self._used[stream]
        prev = used.get(line)  # the time this very line last got in this millisecond
        if prev is not None and prev >= ts:
            ts = prev + 1
        used[line] = ts
        return ts

    def _add(self, out: Converted, stream: int, ts: int, line: str, meta: Metadata | None) -> None:
        limit = self.max_line_bytes
        if meta:
            # A Loki without structured metadata gets it in the line (batch.fold_metadata): keep
            # room for it, or every split part would end up over LOKI_MAX_LINE_BYTES there.
            room = sum(len(f" {k}={v}".encode("utf-8", "surrogatepass")) for k, v in meta.items())
            limit = max(limit - room, limit // 2)
        # Fast path: a line of n chars is at most 4n bytes in UTF-8.
        if len(line) * 4 <= limit or len(line.encode("utf-8", "surrogatepass")) <= limit:
            out.entries.append((stream, self._ts(stream, ts, line), line, meta))
            return
        # Parts get t, t+1ns, ... so they sort in order in Loki.
        for i, part in enumerate(split_line(line, limit)):
            out.entries.append((stream, self._ts(stream, ts + i, part), part, meta))

    def _one(self, item: Any, out: Converted) -> None:
        if type(item) is not dict:
            return
        kind = item.get("type")
        record = item.get("record")
        ts = iso_to_ns(item.get("time"))
        if ts is None:
            ts = time.time_ns()
        if kind == pe.FUNCTION and type(record) is str:  # the hot path: one text line
            line = record[:-1] if record.endswith("\n") else record
            if line.endswith("\r"):
                line = line[:-1]
            level, rid = _text_level_and_request(line)
            rid = rid or self.current_request_id
            meta: Metadata | None = self._meta(level, rid) if (level or rid) else None
            self._add(out, STREAM_FUNCTION, ts, line, meta)
            return
        if kind == pe.FUNCTION or kind == pe.EXTENSION:
            stream = STREAM_FUNCTION if kind == pe.FUNCTION else STREAM_EXTENSION
            if stream == STREAM_EXTENSION and not self.ship_extension:
                return
            tenant: str | None = None
            if isinstance(record, str):
                line = record[:-1] if record.endswith("\n") else record
                if line.endswith("\r"):
                    line = line[:-1]
                if stream == STREAM_EXTENSION and line.lstrip().startswith(MARKER):
                    return  # our own diagnostics: never ship them back (feedback loop)
                level, rid = _text_level_and_request(line)
            elif isinstance(record, dict):
                import json

                msg = record.get("message")
                if stream == STREAM_EXTENSION and isinstance(msg, str) and msg.lstrip().startswith(MARKER):
                    return
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
                lv = record.get("level")
                level = lv.upper() if isinstance(lv, str) and lv else None
                r = record.get("requestId")
                rid = r if isinstance(r, str) and r else None
                t = record.get("tenantId")
                tenant = t if isinstance(t, str) and t else None
            elif record is None:
                return
            else:
                import json

                line = json.dumps(record, ensure_ascii=False, default=str)
                level = rid = None
            rid = rid or (self.current_request_id if stream == STREAM_FUNCTION else None)
            meta = self._meta(level, rid, tenant) if (level or rid or tenant) else None
            self._add(out, stream, ts, line, meta)
            return

        if not isinstance(kind, str) or not kind.startswith(pe.PREFIX):
            return
        rec: dict[str, Any] = record if isinstance(record, dict) else {}
        rid_obj = rec.get("requestId")
        prid = rid_obj if isinstance(rid_obj, str) else None
        if kind == pe.START and prid and self.attribute_by_start:
            self.current_request_id = prid
        elif kind == pe.RUNTIME_DONE and prid:
            out.runtime_done.append(prid)
            out.runtime_done_ns.append(ts)
        elif kind == pe.LOGS_DROPPED:
            n = rec.get("droppedRecords")
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                out.lambda_dropped_records += n
        if self.ship_platform:
            t_obj = rec.get("tenantId")
            tenant_p = t_obj if isinstance(t_obj, str) and t_obj else None
            meta_p = self._meta(None, prid, tenant_p) if (prid or tenant_p) else None
            self._add(out, STREAM_PLATFORM, ts, render_platform(kind, record), meta_p)
