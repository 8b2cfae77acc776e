"""records: telemetry deliveries → Loki entries."""

from __future__ import annotations

import calendar
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loki_telemetry_extension.diag import MARKER
from loki_telemetry_extension.records import (
    STREAM_EXTENSION,
    STREAM_FUNCTION,
    STREAM_PLATFORM,
    RecordConverter,
    iso_to_ns,
    render_platform,
)

T = "2024-03-05T06:07:08.123Z"
T_NS = calendar.timegm((2024, 3, 5, 6, 7, 8)) * 10**9 + 123_000_000


def conv(**kw: Any) -> RecordConverter:
    args = {"ship_platform": False, "ship_extension": False, "max_line_bytes": 256_000, **kw}
    return RecordConverter(**args)


def body(*items: dict[str, Any]) -> bytes:
    return json.dumps(list(items)).encode()


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        (T, T_NS),
        ("2024-03-05T06:07:08Z", T_NS - 123_000_000),
        ("2024-03-05T06:07:08.123456789Z", T_NS + 456_789),
        ("2024-03-05T06:07:08.1234567891Z", T_NS + 456_789),  # beyond ns: truncated
        ("2024-03-05T08:07:08.123+02:00", T_NS),
        ("2024-03-05T01:07:08.123-0500", T_NS),
        ("1970-01-01T00:00:00Z", 0),
        ("2000-02-29T00:00:00Z", calendar.timegm((2000, 2, 29, 0, 0, 0)) * 10**9),
        ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),  # the last time Loki can store
    ],
)
def test_iso_to_ns(text: str, ns: int) -> None:
    assert iso_to_ns(text) == ns


@pytest.mark.parametrize(
    "bad",
    [
        None,
        5,
        "",
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-03-05 06:07",
        "2024-03-05T06:07:08.Z",
        "2024-03-05T06:07:08+2",
        "2024-03-05T06:07:08.1x",
        # Outside Loki's int64 ns: one such entry would make Loki refuse the whole request.
        "9999-12-31T23:59:59.999Z",
        "2262-04-11T23:47:16.854775808Z",
        "1969-12-31T23:59:59.999Z",
    ],
)
def test_iso_to_ns_rejects(bad: object) -> None:
    assert iso_to_ns(bad) is None


@given(
    st.datetimes(
        min_value=__import__("datetime").datetime(1971, 1, 1),
        max_value=__import__("datetime").datetime(2200, 1, 1),
    )
)
def test_iso_to_ns_matches_datetime(dt: Any) -> None:
    import datetime

    aware = dt.replace(tzinfo=datetime.timezone.utc)
    text = aware.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    expected = calendar.timegm(aware.timetuple()) * 10**9 + aware.microsecond * 1000
    assert iso_to_ns(text) == expected


def test_text_record_strips_newline_keeps_time_and_tags_request() -> None:
    c = conv()
    out = c.convert(
        body(
            {"time": T, "type": "platform.start", "record": {"requestId": "r-1"}},
            {"time": T, "type": "function", "record": "hello world\n"},
        )
    )
    assert out.entries == [(STREAM_FUNCTION, T_NS, "hello world", {"request_id": "r-1"})]


def test_crlf_and_inner_newlines() -> None:
    out = conv().convert(body({"time": T, "type": "function", "record": "a\nb\r\n"}))
    assert out.entries[0][2] == "a\nb"


def test_python_text_logging_line_gives_level_and_its_own_request_id() -> None:
    line = "[ERROR]\t2024-03-05T06:07:08.123Z\t8f5e1c2a-1111-2222-3333-444455556666\tboom\n"
    out = conv().convert(body({"time": T, "type": "function", "record": line}))
    assert out.entries[0][3] == {"level": "ERROR", "request_id": "8f5e1c2a-1111-2222-3333-444455556666"}
    assert out.entries[0][2] == line[:-1]


def test_bracket_that_is_not_a_level_is_plain_text() -> None:
    out = conv().convert(body({"time": T, "type": "function", "record": "[1, 2, 3]"}))
    assert out.entries[0][3] is None


def test_json_record_is_shipped_as_json_line_with_metadata() -> None:
    rec = {"timestamp": T, "level": "INFO", "message": "hi ✓", "logger": "root", "requestId": "r-9"}
    out = conv().convert(body({"time": T, "type": "function", "record": rec}))
    stream, ts, line, meta = out.entries[0]
    assert (stream, ts, meta) == (STREAM_FUNCTION, T_NS, {"level": "INFO", "request_id": "r-9"})
    assert json.loads(line) == rec and "✓" in line  # not \u-escaped


def test_unicode_text_survives() -> None:
    out = conv().convert(body({"time": T, "type": "function", "record": "héllo 日本 🎉\n"}))
    assert out.entries[0][2] == "héllo 日本 🎉"


def test_missing_or_bad_time_uses_now() -> None:
    before = time.time_ns()
    out = conv().convert(
        body({"type": "function", "record": "x"}, {"time": "nope", "type": "function", "record": "y"})
    )
    assert all(before <= e[1] <= time.time_ns() for e in out.entries)


def test_platform_events_are_not_shipped_unless_asked_but_still_signal() -> None:
    c = conv()
    out = c.convert(
        body(
            {"time": T, "type": "platform.start", "record": {"requestId": "r1"}},
            {"time": T, "type": "platform.runtimeDone", "record": {"requestId": "r1", "status": "success"}},
            {
                "time": T,
                "type": "platform.logsDropped",
                "record": {"droppedRecords": 7, "droppedBytes": 900, "reason": "slow"},
            },
        )
    )
    assert out.entries == []
    assert out.runtime_done == ["r1"]
    assert out.lambda_dropped_records == 7
    assert c.current_request_id == "r1"


def test_platform_events_are_rendered_when_asked() -> None:
    out = conv(ship_platform=True).convert(
        body(
            {
                "time": T,
                "type": "platform.report",
                "record": {
                    "requestId": "r1",
                    "status": "success",
                    "metrics": {
                        "durationMs": 12.345,
                        "billedDurationMs": 13,
                        "memorySizeMB": 128,
                        "maxMemoryUsedMB": 40,
                        "initDurationMs": 150.5,
                    },
                },
            },
        )
    )
    stream, ts, line, meta = out.entries[0]
    assert (stream, ts, meta) == (STREAM_PLATFORM, T_NS, {"request_id": "r1"})
    assert line == (
        "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB"
        "\tMax Memory Used: 40 MB\tInit Duration: 150.50 ms\tStatus: success"
    )


@pytest.mark.parametrize(
    ("kind", "record", "expected"),
    [
        ("platform.start", {"requestId": "r1", "version": "$LATEST"}, "START RequestId: r1 Version: $LATEST"),
        (
            "platform.runtimeDone",
            {"requestId": "r1", "status": "timeout", "metrics": {"durationMs": 3000.0, "producedBytes": 12}},
            "END RequestId: r1\tStatus: timeout\tDuration: 3000.00 ms\tProduced Bytes: 12",
        ),
        (
            "platform.initStart",
            {"initializationType": "on-demand", "phase": "init", "runtimeVersion": "python:3.12"},
            "INIT_START Runtime Version: python:3.12\tPhase: init\tType: on-demand",
        ),
        (
            "platform.initRuntimeDone",
            {"status": "error", "phase": "init", "errorType": "Runtime.ImportModuleError"},
            "INIT_RUNTIME_DONE Status: error\tPhase: init\tError Type: Runtime.ImportModuleError",
        ),
        (
            "platform.initReport",
            {"phase": "init", "metrics": {"durationMs": 99.5}},
            "INIT_REPORT Init Duration: 99.50 ms\tPhase: init",
        ),
        (
            "platform.logsDropped",
            {"droppedRecords": 3, "droppedBytes": 10, "reason": "r"},
            "LOGS_DROPPED Dropped Records: 3\tDropped Bytes: 10\tReason: r",
        ),
        (
            "platform.telemetrySubscription",
            {"name": "x", "state": "Subscribed"},
            'TELEMETRYSUBSCRIPTION {"name":"x","state":"Subscribed"}',
        ),
    ],
)
def test_render_platform(kind: str, record: dict[str, Any], expected: str) -> None:
    assert render_platform(kind, record) == expected


def test_own_marker_lines_in_extension_records_are_dropped() -> None:
    out = conv(ship_extension=True).convert(
        body(
            {"time": T, "type": "extension", "record": f"{MARKER} cannot push\n"},
            {"time": T, "type": "extension", "record": {"message": f"{MARKER} x", "level": "INFO"}},
            {"time": T, "type": "extension", "record": "other extension says hi\n"},
        )
    )
    assert [(e[0], e[2]) for e in out.entries] == [(STREAM_EXTENSION, "other extension says hi")]


def test_extension_records_skipped_unless_asked() -> None:
    assert conv().convert(body({"time": T, "type": "extension", "record": "x"})).entries == []


def test_oversize_line_is_split_with_markers_and_increasing_timestamps() -> None:
    line = "x" * 5000
    out = conv(max_line_bytes=1024).convert(body({"time": T, "type": "function", "record": line}))
    assert len(out.entries) > 1
    assert all(len(e[2].encode()) <= 1024 for e in out.entries)
    assert [e[1] for e in out.entries] == [T_NS + i for i in range(len(out.entries))]
    assert "".join(e[2].rsplit(" [split ", 1)[0] for e in out.entries) == line
    assert out.entries[-1][2].endswith(f" [split {len(out.entries)}/{len(out.entries)}]")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{}",
        b"[1, 2]",
        b'[{"type": 5}]',
        b"\xff\xfe",
        b'[{"type": "function"}]',
        b'[{"type": "platform.report", "record": 5}]',
        b"[" * 100000,
    ],
)
def test_garbage_never_raises(payload: bytes) -> None:
    conv(ship_platform=True, ship_extension=True).convert(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
items = st.fixed_dictionaries(
    {},
    optional={
        "time": st.one_of(st.just(T), st.text(max_size=30), json_values),
        "type": st.sampled_from(
            [
                "function",
                "extension",
                "platform.start",
                "platform.runtimeDone",
                "platform.report",
                "platform.logsDropped",
                "platform.initStart",
                "bogus",
            ]
        )
        | json_values,
        "record": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(items | json_values, max_size=8), st.integers(1024, 4096))
def test_fuzzed_deliveries_never_raise_and_respect_line_limit(payload: list[Any], max_line: int) -> None:
    out = conv(ship_platform=True, ship_extension=True, max_line_bytes=max_line).convert(
        json.dumps(payload).encode()
    )
    for stream, ts, line, meta in out.entries:
        assert stream in (STREAM_FUNCTION, STREAM_PLATFORM, STREAM_EXTENSION)
        assert isinstance(ts, int) and isinstance(line, str)
        assert len(line.encode("utf-8", "surrogatepass")) <= max_line
        assert meta is None or all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())


def test_repeated_lines_in_one_millisecond_get_distinct_increasing_times() -> None:
    # Loki keeps one entry per identical (timestamp, line): without this, 4 of 5 would vanish.
    c = conv()
    out = c.convert(body(*[{"time": T, "type": "function", "record": "same line\n"}] * 5))
    assert [e[1] for e in out.entries] == [T_NS + i for i in range(5)]
    # ...and it carries over to the next delivery, per stream
    out2 = c.convert(body({"time": T, "type": "function", "record": "same line\n"}))
    assert out2.entries[0][1] == T_NS + 5


def test_distinct_lines_keep_their_exact_event_time() -> None:
    c = conv()
    older = "2024-03-05T06:07:07.000Z"
    out = c.convert(
        body(
            *[{"time": T, "type": "function", "record": f"line {i}"} for i in range(3)],
            {"time": older, "type": "function", "record": "straggler"},
            {"time": older, "type": "function", "record": "straggler"},
        )
    )
    assert [e[1] for e in out.entries] == [T_NS, T_NS, T_NS, T_NS - 1_123_000_000, T_NS - 1_123_000_000]


def test_repeats_interleaved_with_other_lines() -> None:
    out = conv().convert(body(*[{"time": T, "type": "function", "record": r} for r in "aabab"]))
    assert [(e[2], e[1] - T_NS) for e in out.entries] == [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("b", 1)]


def test_streams_are_independent_for_time_adjustment() -> None:
    c = conv(ship_platform=True)
    out = c.convert(
        body(
            {"time": T, "type": "function", "record": "x"},
            {"time": T, "type": "platform.start", "record": {"requestId": "r"}},
        )
    )
    assert [e[1] for e in out.entries] == [T_NS, T_NS]


def test_repeat_detection_is_shared_between_fast_and_general_paths() -> None:
    other_format = "2024-03-05T08:07:08.123+02:00"  # same instant, taken by the general path
    out = conv().convert(
        body(
            {"time": T, "type": "function", "record": "x\n"},
            {"time": T, "type": "function", "record": {"message": "json", "level": "INFO"}},
            {"time": other_format, "type": "function", "record": "x\n"},
            {"time": T, "type": "function", "record": "x\n"},
            {"time": T, "type": "platform.start", "record": {"requestId": "r2"}},
            {"time": T, "type": "function", "record": "y\n"},
        )
    )
    assert [(e[2], e[1] - T_NS) for e in out.entries] == [
        ("x", 0),
        ('{"message":"json","level":"INFO"}', 0),
        ("x", 1),
        ("x", 2),
        ("y", 0),
    ]
    assert out.entries[-1][3] == {"request_id": "r2"}  # the request id set by the general path


def test_tenant_id_of_json_records_and_platform_events_is_metadata() -> None:
    c = conv(ship_platform=True)
    rec = {"timestamp": T, "level": "INFO", "message": "hi", "requestId": "r-1", "tenantId": "blue"}
    out = c.convert(body(
        {"time": T, "type": "platform.start", "record": {"requestId": "r-1", "tenantId": "blue"}},
        {"time": T, "type": "function", "record": rec},
    ))
    assert [e[3] for e in out.entries] == [
        {"request_id": "r-1", "tenant_id": "blue"},
        {"request_id": "r-1", "level": "INFO", "tenant_id": "blue"},
    ]
    assert list(out.entries[1][3] or {}) == ["request_id", "level", "tenant_id"]  # the fold order


def test_node_text_format_gives_level_and_request_id() -> None:
    line = "2024-03-05T06:07:08.123Z\t8f5e1c2a-1111-2222-3333-444455556666\tWARN\tcareful\n"
    out = conv().convert(body({"time": T, "type": "function", "record": line}))
    assert out.entries[0][3] == {"request_id": "8f5e1c2a-1111-2222-3333-444455556666", "level": "WARN"}
    before_first = "2024-03-05T06:07:08.123Z\tundefined\tINFO\tinit\n"  # Node logs before any request
    out = conv().convert(body({"time": T, "type": "function", "record": before_first}))
    assert out.entries[0][3] == {"level": "INFO"}


def test_without_attribution_by_start_a_plain_line_has_no_request_id() -> None:
    c = conv(attribute_by_start=False)
    out = c.convert(body(
        {"time": T, "type": "platform.start", "record": {"requestId": "r-1"}},
        {"time": T, "type": "function", "record": "plain print\n"},
    ))
    assert out.entries[0][3] is None and c.current_request_id is None


def test_runtime_done_comes_with_its_event_time() -> None:
    out = conv().convert(body({"time": T, "type": "platform.runtimeDone", "record": {"requestId": "r"}}))
    assert (out.runtime_done, out.runtime_done_ns) == (["r"], [T_NS])


@pytest.mark.parametrize("time_", [T, "2024-03-05T08:07:08.123+02:00"])
def test_split_parts_leave_room_for_metadata_folded_into_the_line(time_: str) -> None:
    from loki_telemetry_extension.batch import fold_metadata

    # GIVEN a line far over the limit, tagged with a request id
    c = conv(max_line_bytes=1024)
    out = c.convert(body({"time": T, "type": "platform.start", "record": {"requestId": "r" * 36}},
                         {"time": time_, "type": "function", "record": "é" * 3000 + "\n"}))
    assert len(out.entries) > 1
    # THEN every part stays within the limit also with the metadata folded in (Loki 2.x)
    for _, _, line, meta in out.entries:
        assert len(fold_metadata(line, meta).encode()) <= 1024
