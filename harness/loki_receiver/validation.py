"""Decode and validate a push body the way Loki's distributor does.

Pure functions, no HTTP and no storage, so each rule is testable on its own.
Order and wording follow grafana/loki: ``pkg/loghttp/push/push.go`` (body
decoding), ``pkg/distributor/validator.go`` (per-stream and per-entry checks),
``pkg/validation/validate.go`` (messages) and ``util.GroupedErrors`` (how the
400 body groups them).
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from .limits import LOG_LEVEL_FIELDS, MAX_BODY_BYTES, SERVICE_NAME_LABEL, Limits

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class PushError(Exception):
    """The whole request is rejected before any entry is looked at."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Rejection(NamedTuple):
    """Why Loki refused entries: its ``discarded_samples_total`` reason and its message."""

    reason: str
    message: str


class Entry(NamedTuple):
    ts_ns: int
    line: str
    metadata: Mapping[str, str]


#: Shared "no structured metadata" value; never mutated.
_EMPTY: dict[str, str] = {}


@dataclass
class Stream:
    labels: dict[str, str]
    entries: list[Entry]


@dataclass
class Validated:
    """Outcome of validating a decoded push: what to store and what was refused."""

    streams: list[Stream] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Entries refused, by Loki's discard reason (``loki_discarded_samples_total{reason}``).
    discarded: dict[str, int] = field(default_factory=dict)
    received: int = 0
    #: Bytes counted against the ingestion rate: line + structured metadata of valid entries.
    accepted_bytes: int = 0

    def discard(self, reason: str, n: int) -> None:
        self.discarded[reason] = self.discarded.get(reason, 0) + n

    @property
    def accepted(self) -> int:
        return sum(len(s.entries) for s in self.streams)


# --- body --------------------------------------------------------------------


def decode_body(raw: bytes, content_encoding: str, content_type: str | None) -> bytes:
    """Undo Content-Encoding and check Content-Type; returns the JSON bytes."""
    if content_encoding in ("", "snappy"):
        # "snappy" is passed through by Loki too (its protobuf path decodes it).
        body = raw
    elif content_encoding == "gzip":
        body = _inflate(raw, 16 + zlib.MAX_WBITS, "gzip")
    elif content_encoding == "deflate":
        # Go's flate.NewReader reads *raw* DEFLATE (RFC 1951), not zlib-wrapped (RFC 1950) data.
        body = _inflate(raw, -zlib.MAX_WBITS, "flate")
    else:
        raise PushError(400, f'Content-Encoding "{content_encoding}" not supported')
    if len(body) > MAX_BODY_BYTES:
        raise PushError(413, f"request body too large: {len(body)} bytes, limit: {MAX_BODY_BYTES} bytes")

    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not media_type:
        raise PushError(400, "mime: no media type")
    if media_type != "application/json":
        # Real Loki reads every other type as snappy-compressed protobuf and answers 400
        # "snappy: corrupt input" to anything else. This receiver cannot decode snappy (no
        # snappy in the standard library), so it answers that 400 to every such push.
        raise PushError(400, "snappy: corrupt input (this test receiver decodes application/json only)")
    return body


def _inflate(raw: bytes, wbits: int, what: str) -> bytes:
    """Decompress at most MAX_BODY_BYTES + 1 bytes, so a compression bomb cannot exhaust memory.

    gzip may hold several members back to back (Go's reader reads them all).
    """
    out = bytearray()
    data = raw
    try:
        while True:
            d = zlib.decompressobj(wbits)
            out += d.decompress(data, MAX_BODY_BYTES + 1 - len(out))
            if len(out) > MAX_BODY_BYTES:
                return bytes(out)
            if not d.eof:
                raise PushError(400, f"{what}: unexpected EOF")
            data = d.unused_data
            if wbits < 0 or not data:
                return bytes(out)
    except zlib.error as exc:
        raise PushError(400, f"{what}: invalid body: {exc}") from exc


# --- JSON --------------------------------------------------------------------


_TIMESTAMP = re.compile(r"-?[0-9]+\Z")
#: 3.x parses the digits as a JSON number: no leading zeros (2.x accepts them).
_TIMESTAMP_3 = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_INT64 = (-(1 << 63), (1 << 63) - 1)


class _Raw(str):
    """A decoded JSON string that also keeps its text as written (escapes included)."""

    raw: str


def _raw_decoder() -> json.JSONDecoder:
    """A decoder whose string values are ``_Raw`` (pure-Python scanner: used only on bodies
    with escapes, when the version stores some strings as written)."""
    decoder = json.JSONDecoder()

    def parse_string(s: str, end: int, strict: bool = True) -> tuple[str, int]:
        value, stop = json.decoder.scanstring(s, end, strict)  # type: ignore[attr-defined]
        out = _Raw(value)
        out.raw = s[end : stop - 1]
        return out, stop

    decoder.parse_string = parse_string  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


_PLAIN = json.JSONDecoder()
_RAW = _raw_decoder()


def _as_written(value: str, raw: bool) -> str:
    return value.raw if raw and isinstance(value, _Raw) else str(value)


def _escapable(value: object) -> bool:
    """Whether `value` may have been written with escapes (so its text differs from its value)."""
    return isinstance(value, str) and not (value.isascii() and value.isprintable() and '"' not in value
                                           and "\\" not in value and "/" not in value)


def _escaped_where_kept(doc: object, lim: Limits) -> bool:
    """Whether a label value (2.9) or metadata value (3.x) the version keeps as written may differ."""
    if not isinstance(doc, dict) or not isinstance(doc.get("streams"), list):
        return False
    for s in doc["streams"]:
        if not isinstance(s, dict):
            continue
        labels = s.get("stream")
        if lim.raw_label_values and isinstance(labels, dict) and any(map(_escapable, labels.values())):
            return True
        values = s.get("values")
        if lim.raw_metadata_values and isinstance(values, list):
            for v in values:
                if (isinstance(v, list) and len(v) > 2 and isinstance(v[2], dict)
                        and any(map(_escapable, v[2].values()))):
                    return True
    return False


def parse_push(body: bytes, limits: Limits | None = None) -> list[Stream]:
    """Parse Loki's JSON push body the way the version's decoder does.

    Any shape error rejects the whole request. Like Loki's streaming decoder, whatever
    follows the first JSON value is ignored, ``null`` reads as "no streams", and bytes that
    are not UTF-8 are kept (shown as U+FFFD).
    """
    lim = limits or Limits()
    text = body.decode("utf-8", "replace").lstrip(" \t\r\n")
    if not text:
        raise PushError(400, "EOF")
    try:
        doc, _ = _PLAIN.raw_decode(text)
        if "\\" in text and _escaped_where_kept(doc, lim):
            # The slow pure-Python scanner, only for the rare body where it changes a value.
            doc, _ = _RAW.raw_decode(text)
    except ValueError as exc:
        raise PushError(400, f"loghttp.PushRequest: readObjectStart: {exc}") from exc
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise PushError(400, "loghttp.PushRequest: readObjectStart: expect { or n, but found non-object")
    raw_streams = doc.get("streams")
    if raw_streams is None:
        return []
    if not isinstance(raw_streams, list):
        raise PushError(400, "loghttp.PushRequest.Streams: decode slice: expect [ or n")
    streams: list[Stream] = []
    for s in raw_streams:
        if s is None and lim.mode == "2.7":
            # 2.7.7 dereferences the missing stream (measured: 500, nothing stored).
            raise PushError(
                500, "error while processing request: runtime error: invalid memory address or nil pointer "
                "dereference"
            )
        if not isinstance(s, dict):
            raise PushError(400, "loghttp.PushRequest.Streams: expect { or n")
        labels = s.get("stream", {})
        if labels is None and lim.mode == "3":
            raise PushError(
                400, "loghttp.PushRequest.Streams: Value looks like object, but can't find closing '}'"
            )
        labels = labels or {}
        if not isinstance(labels, dict):
            raise PushError(400, "loghttp.LabelSet: stream labels must be an object of strings")
        label_values: dict[str, str] = {}
        for k, v in labels.items():
            if isinstance(v, str):
                label_values[str(k)] = _as_written(v, lim.raw_label_values)
            elif lim.number_label_values and isinstance(v, (int, float)) and not isinstance(v, bool):
                label_values[str(k)] = json.dumps(v)
            else:
                raise PushError(400, "loghttp.LabelSet: stream labels must be an object of strings")
        values = s.get("values")
        if values is None:
            values = []
        if not isinstance(values, list):
            raise PushError(400, "loghttp.PushRequest.Streams: unmarshalerDecoder: Unknown value type")
        streams.append(Stream(labels=label_values, entries=[_parse_entry(v, lim) for v in values]))
    return streams


_LEGACY_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_legacy_push(body: bytes) -> list[Stream]:
    """The legacy ``/api/prom/push`` JSON: ``{"streams": [{"labels": "{a=\"b\"}", "entries":
    [{"ts": "<RFC3339>", "line": "..."}]}]}``. Other keys are ignored, as Loki's decoder does."""
    try:
        doc = json.loads(body.decode("utf-8", "replace") or "null")
    except ValueError as exc:
        raise PushError(400, f"legacy push: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("streams") or [], list):
        raise PushError(400, "legacy push: expect an object with a list of streams")
    streams: list[Stream] = []
    for s in doc.get("streams") or []:
        if not isinstance(s, dict):
            raise PushError(400, "legacy push: expect { for a stream")
        text = str(s.get("labels") or "").strip().removeprefix("{").removesuffix("}")
        labels = {m.group(1): json.loads(f'"{m.group(2)}"') for m in _LEGACY_LABEL.finditer(text)}
        entries = []
        for e in s.get("entries") or []:
            if not isinstance(e, dict):
                raise PushError(400, "legacy push: expect { for an entry")
            try:
                at = datetime.fromisoformat(str(e.get("ts", "")))
            except ValueError as exc:
                raise PushError(400, f"legacy push: bad ts: {exc}") from exc
            ts = int(at.timestamp()) * 1_000_000_000 + at.microsecond * 1000
            entries.append(Entry(ts, str(e.get("line", "")), _EMPTY))
        streams.append(Stream(labels=labels, entries=entries))
    return streams


def _parse_entry(value: object, lim: Limits) -> Entry:
    if not isinstance(value, list):
        raise PushError(400, "loghttp.Entry: expect [ for an entry")
    ts_raw = value[0] if len(value) > 0 else None
    if not isinstance(ts_raw, str):
        # Loki's decoder insists on a string (jsonparser.MalformedStringError).
        raise PushError(400, "Value is string, but can't find closing '\"' symbol (timestamp: not a string)")
    pattern = _TIMESTAMP_3 if lim.mode == "3" else _TIMESTAMP
    if not pattern.match(ts_raw) or not _INT64[0] <= int(ts_raw) <= _INT64[1]:
        raise PushError(
            400, f"Value looks like Number/Boolean/None, but can't find its end: timestamp {ts_raw!r}"
        )
    ts = int(ts_raw)
    line = value[1] if len(value) > 1 else ""
    if not isinstance(line, str):
        raise PushError(400, "Value is string, but can't find closing '\"' symbol (line must be a string)")
    metadata: dict[str, str] = _EMPTY
    if len(value) > 2:
        sm = value[2]
        if not lim.structured_metadata_known:
            # 2.7 reads the third element as a string it then ignores; anything else breaks it.
            if not isinstance(sm, str):
                raise PushError(
                    400, "unmarshalerDecoder: Value is string, but can't find closing '\"' symbol"
                )
        elif not isinstance(sm, dict):
            raise PushError(400, "Value looks like object, but can't find closing '}' symbol (metadata)")
        else:
            for k, v in sm.items():
                if not isinstance(v, str):
                    raise PushError(400, f"structured metadata value for {k!r} must be a string")
            if lim.raw_metadata_values:
                metadata = {str(k): _as_written(v, True) for k, v in sm.items()}
            else:
                metadata = {str(k): str(v) for k, v in sm.items()}
    return Entry(ts, str(line), metadata)


# --- labels ------------------------------------------------------------------


def labels_string(labels: Mapping[str, str]) -> str:
    """Prometheus ``labels.String()``: sorted, ``{a="b", c="d"}``."""
    parts = [f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(labels.items())]
    return "{" + ", ".join(parts) + "}"


def normalise_labels(raw: Mapping[str, str]) -> dict[str, str]:
    """Check names like LogQL's ``ParseLabels`` (a bad one rejects the whole request); drop empty values."""
    for name in raw:
        if not _LABEL_NAME.match(name):
            raise PushError(
                400,
                f"couldn't parse labels: parse error : unexpected label name {name!r} in "
                f"{labels_string(raw)} (names must match [a-zA-Z_][a-zA-Z0-9_]*)",
            )
    return {k: v for k, v in sorted(raw.items()) if v != ""}


def validate_labels(labels: Mapping[str, str], limits: Limits) -> Rejection | None:
    """Per-stream checks (``ValidateLabels``); returns the error message or None."""
    if not labels:
        return Rejection("missing_labels", "error at least one label pair is required per stream")
    ls = labels_string(labels)
    count = len(labels) - (1 if SERVICE_NAME_LABEL in labels else 0)
    if count > limits.max_label_names_per_series:
        return Rejection(
            "max_label_names_per_series",
            f"entry for stream '{ls}' has {count} label names; limit {limits.max_label_names_per_series}",
        )
    for name, value in sorted(labels.items()):
        if len(name.encode()) > limits.max_label_name_length:
            return Rejection("label_name_too_long", f"stream '{ls}' has label name too long: '{name}'")
        if len(value.encode()) > limits.max_label_value_length:
            return Rejection("label_value_too_long", f"stream '{ls}' has label value too long: '{value}'")
    return None


# --- entries -----------------------------------------------------------------


def _rfc3339(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_entry(entry: Entry, ls: str, limits: Limits, now_ns: int) -> tuple[Rejection | None, int]:
    """Per-entry checks (``ValidateEntry``), in Loki's order, and the entry's size (line + structured
    metadata bytes, what the rate limit counts)."""
    oldest = now_ns - int(limits.reject_old_samples_max_age_s * 1e9)
    if limits.reject_old_samples and entry.ts_ns < oldest:
        return _err(
            "greater_than_max_sample_age",
            f"entry for stream '{ls}' has timestamp too old: {_rfc3339(entry.ts_ns)}, "
            f"oldest acceptable timestamp is: {_rfc3339(oldest)}",
        )
    if entry.ts_ns > now_ns + int(limits.creation_grace_period_s * 1e9):
        return _err(
            "too_far_in_future", f"entry for stream '{ls}' has timestamp too new: {_rfc3339(entry.ts_ns)}"
        )
    line_len = len(entry.line) if entry.line.isascii() else len(entry.line.encode())
    if limits.max_line_size and line_len > limits.max_line_size:
        return _err(
            "line_too_long",
            f"Max entry size '{limits.max_line_size}' bytes exceeded for stream '{ls}' "
            f"while adding an entry with length '{line_len}' bytes",
        )
    size = line_len
    if entry.metadata:
        if not limits.allow_structured_metadata:
            return _err(
                "disallowed_structured_metadata",
                f"stream '{ls}' includes structured metadata, but this feature is disallowed. Please see "
                f"`limits_config.{limits.disallowed_metadata_key}` or contact your Loki administrator to "
                "enable it.",
            )
        sm_size = metadata_size(entry.metadata)
        size += sm_size
        if limits.max_structured_metadata_size and sm_size > limits.max_structured_metadata_size:
            return _err(
                "structured_metadata_too_large",
                f"stream '{ls}' has structured metadata too large: '{sm_size}' bytes, limit: "
                f"'{limits.max_structured_metadata_size}' bytes. Please see "
                "`limits_config.max_structured_metadata_size` or contact your Loki administrator to "
                "increase it.",
            )
        count = len(entry.metadata)
        max_count = limits.max_structured_metadata_entries_count
        if max_count and count > max_count:
            return _err(
                "structured_metadata_too_many",
                f"stream '{ls}' has too many structured metadata labels: '{count}', limit: "
                f"'{limits.max_structured_metadata_entries_count}'. Please see "
                "`limits_config.max_structured_metadata_entries_count` or contact your Loki administrator "
                "to increase it.",
            )
    return None, size


def _err(reason: str, message: str) -> tuple[Rejection, int]:
    return Rejection(reason, message), 0


def metadata_size(metadata: Mapping[str, str]) -> int:
    """Loki's ``StructuredMetadataSize``: bytes of every name plus every value."""
    size = 0
    for k, v in metadata.items():
        size += len(k) if k.isascii() else len(k.encode())
        size += len(v) if v.isascii() else len(v.encode())
    return size


def validate(
    streams: list[Stream],
    limits: Limits,
    *,
    now_ns: int | None = None,
    discover_service_name: tuple[str, ...] = (),
) -> Validated:
    """Split a decoded push into what Loki would store and the error for everything else."""
    now = time.time_ns() if now_ns is None else now_ns
    out = Validated()
    # Loki's push parser reads every stream's labels before validating anything: one bad
    # name fails the whole request, even on a stream without entries.
    normalised = [normalise_labels(stream.labels) for stream in streams]
    for stream in streams:
        out.received += len(stream.entries)
    if not streams and limits.empty_push_status != 204:
        raise PushError(limits.empty_push_status, "error at least one valid stream is required for ingestion")
    for stream, labels in zip(streams, normalised, strict=True):
        entries = stream.entries
        if limits.drop_empty_lines:
            entries = [e for e in entries if e.line]
        if not entries:
            continue
        if discover_service_name and SERVICE_NAME_LABEL not in labels:
            labels[SERVICE_NAME_LABEL] = next(
                (labels[n] for n in discover_service_name if labels.get(n)), "unknown_service"
            )
            labels = dict(sorted(labels.items()))
        rejected = validate_labels(labels, limits)
        if rejected:
            out.errors.append(rejected.message)
            out.discard(rejected.reason, len(entries))
            continue
        ls = labels_string(labels)
        kept: list[Entry] = []
        for entry in entries:
            rejected, size = check_entry(entry, ls, limits, now)
            if rejected:
                out.errors.append(rejected.message)
                out.discard(rejected.reason, 1)
                continue
            if entry.metadata and limits.mode == "3":
                entry = entry._replace(metadata=_sanitise_metadata(entry.metadata, labels))
            if limits.discover_log_levels and limits.allow_structured_metadata:
                level = detect_level(entry, labels)
                entry = entry._replace(metadata={**entry.metadata, DETECTED_LEVEL: level})
            kept.append(entry)
            out.accepted_bytes += size
        if kept:
            out.streams.append(Stream(labels=labels, entries=kept))
    return out


_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")
DETECTED_LEVEL = "detected_level"


def _sanitise_metadata(metadata: Mapping[str, str], labels: Mapping[str, str]) -> dict[str, str]:
    """3.x stores metadata names as Prometheus label names: other characters become "_", a
    leading digit gets "key_", and a name a stream label already has gets "_extracted"."""
    out: dict[str, str] = {}
    for name, value in metadata.items():
        clean = _NOT_NAME_CHAR.sub("_", name)
        if clean[:1].isdigit():
            clean = "key_" + clean
        if clean in labels:
            clean += "_extracted"
        out[clean] = value
    return out


_LEVELS = {
    "trace": "trace", "trc": "trace", "debug": "debug", "dbg": "debug", "info": "info", "inf": "info",
    "information": "info", "warn": "warn", "wrn": "warn", "warning": "warn", "error": "error", "err": "error",
    "critical": "critical", "fatal": "fatal",
}
_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')


def detect_level(entry: Entry, labels: Mapping[str, str]) -> str:
    """Loki 3.4's ``detected_level``: a level field in the stream labels or the metadata (as
    written), else the level named in a JSON or logfmt line (normalised), else words in the line."""
    for fields in (labels, entry.metadata):
        for name in LOG_LEVEL_FIELDS:
            if name in fields:
                return fields[name]
    line = entry.line
    stripped = line.strip()
    found: str | None = None
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for name in LOG_LEVEL_FIELDS:
                if name in doc:
                    value = doc[name]
                    found = value if isinstance(value, str) else json.dumps(value)
                    break
    elif "=" in line:
        pairs = {k.lower(): v.strip('"') for k, v in _LOGFMT_PAIR.findall(line)}
        found = next((pairs[n.lower()] for n in LOG_LEVEL_FIELDS if n.lower() in pairs), None)
    if found is not None and found.lower() in _LEVELS:
        return _LEVELS[found.lower()]
    return _level_from_words(line)


def _level_from_words(line: str) -> str:
    if any(w in line for w in ("info:", "INFO:", "[info]", "[INFO]", "info", "INFO")):
        return "info"
    if any(w in line for w in ("err:", "ERR:", "[err]", "[ERR]", "[error]", "[ERROR]")):
        return "error"
    if any(w in line for w in ("warn:", "WARN:", "[warn]", "[WARN]", "[warning]", "[WARNING]", "warning",
                               "WARNING")):
        return "warn"
    if any(w in line for w in ("critical:", "CRITICAL:", "[critical]", "[CRITICAL]")):
        return "critical"
    if any(w in line for w in ("debug:", "DEBUG:", "[debug]", "[DEBUG]")):
        return "debug"
    return "unknown"


def encoded_size(streams: list[Stream]) -> int:
    """Roughly the protobuf size of the ingester's push request (within a few bytes per entry)."""
    size = 0
    for s in streams:
        size += len(labels_string(s.labels).encode()) + 16
        for e in s.entries:
            metadata = sum(len(k.encode()) + len(v.encode()) + 6 for k, v in e.metadata.items())
            size += len(e.line.encode()) + 24 + metadata
    return size


def group_errors(errors: list[str]) -> str:
    """``util.GroupedErrors``: "N errors like: msg; M errors like: msg2" (first-seen order here)."""
    counts: dict[str, int] = {}
    for e in errors:
        counts[e] = counts.get(e, 0) + 1
    if len(counts) == 1 and next(iter(counts.values())) == 1:
        return errors[0]
    return "; ".join(f"{n} errors like: {msg}" for msg, n in counts.items())
