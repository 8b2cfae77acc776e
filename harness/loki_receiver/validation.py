"""Decode and validate a push body the way Loki's distributor does.

Pure functions, no HTTP and no storage, so each rule is testable on its own.
Order and wording follow grafana/loki: ``pkg/loghttp/push/push.go`` (body
decoding), ``pkg/distributor/validator.go`` (per-stream and per-entry checks),
``pkg/validation/validate.go`` (messages) and ``util.GroupedErrors`` (how the
400 body groups them).
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple

from .limits import MAX_BODY_BYTES, SERVICE_NAME_LABEL, Limits

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
        # Real Loki reads every other type as snappy-compressed protobuf; this receiver
        # cannot (no snappy in the standard library): a documented departure.
        raise PushError(
            415,
            f"this test receiver only decodes application/json pushes, got Content-Type {media_type!r} "
            "(real Loki would read it as snappy protobuf)",
        )
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


def parse_push(body: bytes) -> list[Stream]:
    """Parse Loki's JSON push body; any shape error rejects the whole request (as Loki does)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushError(400, f"loghttp.PushRequest: readObjectStart: {exc}") from exc
    if not isinstance(doc, dict):
        raise PushError(400, "loghttp.PushRequest: readObjectStart: expect { or n, but found non-object")
    raw_streams = doc.get("streams") or []
    if not isinstance(raw_streams, list):
        raise PushError(400, "loghttp.PushRequest.Streams: decode slice: expect [ or n")
    streams: list[Stream] = []
    for s in raw_streams:
        if not isinstance(s, dict):
            raise PushError(400, "loghttp.PushRequest.Streams: expect { or n")
        labels = s.get("stream") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise PushError(400, "loghttp.LabelSet: stream labels must be an object of strings")
        values = s.get("values") or []
        if not isinstance(values, list):
            raise PushError(400, "loghttp.Stream.Values: expect [ or n")
        streams.append(Stream(labels=dict(labels), entries=[_parse_entry(v) for v in values]))
    return streams


def _parse_entry(value: object) -> Entry:
    if not isinstance(value, list):
        raise PushError(400, "loghttp.Entry: expect [ for an entry")
    ts_raw = value[0] if len(value) > 0 else None
    if not isinstance(ts_raw, str):
        # Loki's decoder insists on a string (jsonparser.MalformedStringError).
        raise PushError(400, "Value is string, but can't find closing '\"' symbol (timestamp: not a string)")
    try:
        ts = int(ts_raw, 10)
    except ValueError as exc:
        raise PushError(400, f"Value is not a number: timestamp {ts_raw!r} must be nanoseconds") from exc
    line = value[1] if len(value) > 1 else ""
    if not isinstance(line, str):
        raise PushError(400, "Value is string, but can't find closing '\"' symbol (line must be a string)")
    metadata: dict[str, str] = _EMPTY
    if len(value) > 2:
        sm = value[2]
        if not isinstance(sm, dict):
            raise PushError(400, "Value looks like object, but can't find closing '}' symbol (metadata)")
        for k, v in sm.items():
            if not isinstance(v, str):
                raise PushError(400, f"structured metadata value for {k!r} must be a string")
        # json.loads built a fresh dict of str -> str: keep it as is.
        metadata = sm
    return Entry(ts, line, metadata)


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


def validate_labels(labels: Mapping[str, str], limits: Limits, reject_reserved: bool) -> Rejection | None:
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
        if reject_reserved and name.startswith("__"):
            return Rejection(
                "invalid_labels", f"stream '{ls}' has a reserved label name (leading '__'): '{name}'"
            )
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
                "`limits_config.allow_structured_metadata` or contact your Loki administrator to enable it.",
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
    reject_reserved_labels: bool = False,
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
    for stream, labels in zip(streams, normalised, strict=True):
        if not stream.entries:
            continue
        if discover_service_name and SERVICE_NAME_LABEL not in labels:
            labels[SERVICE_NAME_LABEL] = next(
                (labels[n] for n in discover_service_name if labels.get(n)), "unknown_service"
            )
            labels = dict(sorted(labels.items()))
        rejected = validate_labels(labels, limits, reject_reserved_labels)
        if rejected:
            out.errors.append(rejected.message)
            out.discard(rejected.reason, len(stream.entries))
            continue
        ls = labels_string(labels)
        kept: list[Entry] = []
        for entry in stream.entries:
            rejected, size = check_entry(entry, ls, limits, now)
            if rejected:
                out.errors.append(rejected.message)
                out.discard(rejected.reason, 1)
                continue
            kept.append(entry)
            out.accepted_bytes += size
        if kept:
            out.streams.append(Stream(labels=labels, entries=kept))
    return out


def group_errors(errors: list[str]) -> str:
    """``util.GroupedErrors``: "N errors like: msg; M errors like: msg2" (first-seen order here)."""
    counts: dict[str, int] = {}
    for e in errors:
        counts[e] = counts.get(e, 0) + 1
    if len(counts) == 1 and next(iter(counts.values())) == 1:
        return errors[0]
    return "; ".join(f"{n} errors like: {msg}" for msg, n in counts.items())
