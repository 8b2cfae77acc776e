"""Unit tests of the emulator's pieces that are easy to get subtly wrong: the log-fd
frame parser and line splitter across arbitrary read boundaries, timestamps, and
subscription validation at every limit."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.lambda_emulator import _records
from harness.lambda_emulator._procs import PipeReader
from harness.lambda_emulator._subscription import SubscriptionError, parse


def _frame(msg: str, ftype: int = 0xA55A0003, micros: int = 1_700_000_000_000_000) -> bytes:
    body = msg.encode()
    return ftype.to_bytes(4, "big") + len(body).to_bytes(4, "big") + micros.to_bytes(8, "big") + body


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.text(min_size=0, max_size=300), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=1, max_value=4000), max_size=10),
)
def test_frames_survive_any_read_boundaries(messages: list[str], cuts: list[int]) -> None:
    got: list[tuple[str, int, float]] = []
    lock = threading.Lock()

    def sink(msg: str, ftype: int, ts: float) -> None:
        with lock:
            got.append((msg, ftype, ts))

    r, w = os.pipe()
    reader = PipeReader(r, "frames", on_frame=sink)
    data = b"".join(_frame(m) for m in messages)
    pos = 0
    for cut in sorted(set(cuts)):
        if cut < len(data):
            os.write(w, data[pos:cut])
            pos = cut
    os.write(w, data[pos:])
    os.close(w)
    reader.thread.join(5)
    assert [g[0] for g in got] == messages
    assert all(g[1] == 0xA55A0003 and g[2] == 1_700_000_000.0 for g in got)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=200
        ),
        min_size=1,
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=3000), max_size=10),
    trailing_newline=st.booleans(),
)
def test_lines_survive_any_read_boundaries(lines: list[str], cuts: list[int], trailing_newline: bool) -> None:
    got: list[str] = []
    r, w = os.pipe()
    reader = PipeReader(r, "lines", on_line=lambda line, _ts: got.append(line))
    data = ("\n".join(lines) + ("\n" if trailing_newline else "")).encode()
    pos = 0
    for cut in sorted(set(cuts)):
        if cut < len(data):
            os.write(w, data[pos:cut])
            pos = cut
    os.write(w, data[pos:])
    os.close(w)
    reader.thread.join(5)
    expected = [line + "\n" for line in lines]
    if not trailing_newline:
        # the last line has no newline: it is emitted as it stands at EOF (unless empty)
        expected[-1] = lines[-1]
        if not lines[-1]:
            expected.pop()
    assert got == expected


def test_drained_waits_for_bytes_in_the_pipe() -> None:
    got: list[str] = []
    r, w = os.pipe()
    reader = PipeReader(r, "drain", on_line=lambda line, _ts: got.append(line))
    os.write(w, b"".join(b"line %d\n" % i for i in range(5000)))
    assert reader.drained(5)
    assert len(got) == 5000
    os.write(w, b"partial")
    assert reader.drained(5)
    assert got[-1] == "partial"  # a line without newline is flushed when drained
    os.close(w)
    reader.thread.join(5)


@given(st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False))
def test_iso_time_matches_datetime(epoch: float) -> None:
    ref = datetime.fromtimestamp(epoch, tz=timezone.utc)
    assert _records.iso_time(epoch) == ref.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ref.microsecond // 1000:03d}Z"


def test_event_size_is_the_delivered_bytes() -> None:
    evt = _records.event("function", {"message": "héllo \u2603", "n": 1}, 1.5)
    assert _records.event_size(evt) == len(json.dumps(evt, separators=(",", ":")).encode())


def test_json_log_record_passes_objects_and_wraps_the_rest() -> None:
    assert _records.json_log_record('{"a": 1}\n', 0.0) == {"a": 1}
    wrapped = _records.json_log_record("plain text\n", 0.0)
    assert wrapped == {"timestamp": "1970-01-01T00:00:00.000Z", "level": "INFO", "message": "plain text"}
    assert _records.json_log_record("[1, 2]\n", 0.0)["message"] == "[1, 2]"


BASE = {
    "schemaVersion": "2022-12-13",
    "types": ["function"],
    "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/path"},
}


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("maxItems", 1000, 10000), ("maxBytes", 262144, 1048576), ("timeoutMs", 25, 30000)],
)
def test_buffering_limits_are_inclusive(field: str, low: int, high: int) -> None:
    for ok in (low, high):
        sub = parse(json.dumps({**BASE, "buffering": {field: ok}}).encode())
        assert (
            getattr(sub, {"maxItems": "max_items", "maxBytes": "max_bytes", "timeoutMs": "timeout_ms"}[field])
            == ok
        )
    for bad in (low - 1, high + 1, "1000", 1000.5, True, None):
        with pytest.raises(SubscriptionError, match=f"buffering.{field}"):
            parse(json.dumps({**BASE, "buffering": {field: bad}}).encode())


def test_defaults_port_and_path() -> None:
    sub = parse(json.dumps(BASE).encode())
    assert (sub.max_items, sub.max_bytes, sub.timeout_ms) == (1000, 262144, 1000)
    assert (sub.port, sub.path) == (4243, "/path")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        json.dumps({**BASE, "destination": "x"}).encode(),
        json.dumps({**BASE, "types": "function"}).encode(),
        json.dumps({**BASE, "buffering": []}).encode(),
        json.dumps({**BASE, "destination": {"protocol": "HTTP", "URI": "http://h:notaport"}}).encode(),
    ],
)
def test_malformed_requests_are_validation_errors(body: bytes) -> None:
    with pytest.raises(SubscriptionError):
        parse(body)
