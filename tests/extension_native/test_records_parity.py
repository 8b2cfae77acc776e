"""Both builds turn the same Telemetry API deliveries into the same Loki entries: lines,
timestamps (repeats included), streams and metadata in order.

The Python build's entries for CASES are committed as Go test data
(extension/native/internal/ext/testdata/records_parity.json); the Go test
TestRecordsParityWithPythonBuild holds the native build to them, and this test fails when the
Python build's output changed without regenerating:

    .venv/bin/python tests/extension_native/test_records_parity.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "extension" / "native" / "internal" / "ext" / "testdata" / "records_parity.json"
RID = "8f5e4c1a-0000-4000-8000-000000000001"
RID2 = "0b7e9e3a-1111-4000-8000-000000000002"
T = "2024-05-06T07:08:09.123Z"


def fn(record: Any, t: str = T) -> dict[str, Any]:
    return {"time": t, "type": "function", "record": record}


def ext(record: Any) -> dict[str, Any]:
    return {"time": T, "type": "extension", "record": record}


def pf(kind: str, record: Any, t: str = T) -> dict[str, Any]:
    return {"time": t, "type": f"platform.{kind}", "record": record}


#: (name, converter options, deliveries in order)
CASES: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("print lines take the request id of platform.start", {}, [
        [pf("start", {"requestId": RID, "version": "$LATEST"}), fn("hello\n"), fn("crlf\r\n"),
         fn("no newline")],
    ]),
    ("python text format: level and request id", {}, [
        [fn(f"[INFO]\t{T}\t{RID}\tstarted\n"), fn(f"[ERROR]\t{T}\t{RID2}\tboom\n"), fn("[warning] lower\n"),
         fn("[NOTALEVEL] x\n"), fn("[INFO] short\n")],
    ]),
    ("repeats within one millisecond get the next nanosecond", {}, [
        [fn("x\n"), fn("x\n"), fn("y\n"), fn("x\n"), fn("x\n", "2024-05-06T07:08:09.124Z"),
         fn("x\n", "2024-05-06T07:08:09.123Z")],
        [fn("x\n", "2024-05-06T07:08:09.124Z")],
    ]),
    ("json records: compact, level upper-cased, request and tenant id", {}, [
        [pf("start", {"requestId": RID}),
         fn({"timestamp": T, "level": "warn", "message": "m", "requestId": RID2, "tenantId": "t-1"}),
         fn({"message": "é \u2028 \"q\" \\ /", "n": [1, 2.5, None, True], "nested": {"a": {}}}),
         fn({"level": "", "message": "no level"}), fn(None), fn(42), fn([1, "two"])],
    ]),
    ("escaped input is rendered the Python way", {"ascii_body": True}, [
        [fn({"message": "caf\u00e9 \u2603 \ud83d\ude00 tab\t", "f": 2.50, "big": 10**20, "e": 1e-7,
             "x": 1e16}),
         fn("caf\u00e9 \u0007 bell\n")],
    ]),
    ("extension records, own diagnostics filtered", {"ship_extension": True}, [
        [ext("[loki-telemetry-extension] log entries lost so far: buffer_full=1\n"),
         ext({"message": "  [loki-telemetry-extension] x"}), ext("other extension says hi\n"),
         ext({"message": "structured", "level": "info"})],
    ]),
    ("extension records not shipped unless asked", {}, [[ext("other\n")]]),
    ("platform events rendered", {"ship_platform": True}, [
        [pf("initStart", {"initializationType": "on-demand", "phase": "init",
                          "runtimeVersion": "python:3.12.v1"}),
         pf("initRuntimeDone", {"initializationType": "on-demand", "phase": "init", "status": "success"}),
         pf("initReport", {"initializationType": "on-demand", "phase": "init", "status": "success",
                           "metrics": {"durationMs": 123.456}}),
         pf("start", {"requestId": RID, "version": "$LATEST", "tenantId": "t-9"}),
         pf("runtimeDone", {"requestId": RID, "status": "success",
                            "metrics": {"durationMs": 1.5, "producedBytes": 42}}),
         pf("runtimeDone", {"requestId": RID2, "status": "error", "errorType": "Runtime.Crash",
                            "metrics": {"durationMs": 3}}),
         pf("report", {"requestId": RID, "status": "success", "metrics": {
             "durationMs": 2.345, "billedDurationMs": 3, "memorySizeMB": 128, "maxMemoryUsedMB": 40,
             "initDurationMs": 100.5}}),
         pf("logsDropped", {"droppedRecords": 7, "droppedBytes": 7000,
                            "reason": "Consumer seems to have fallen behind"}),
         pf("extension", {"name": "e", "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}),
         pf("telemetrySubscription", {"name": "e", "state": "Subscribed", "types": ["platform"]})],
    ]),
    ("other time formats", {}, [
        [fn("utc no fraction\n", "2024-05-06T07:08:09Z"), fn("micro\n", "2024-05-06T07:08:09.123456Z"),
         fn("offset\n", "2024-05-06T09:08:09.5+02:00"), fn("space sep\n", "2024-05-06 07:08:09.001Z")],
    ]),
    ("garbage items are skipped", {}, [
        [42, "text", None, {"type": "function"}, {"time": T, "type": "nope", "record": "x"}, fn("kept\n")],
    ]),
    ("oversize lines split with room for folded metadata", {"max_line_bytes": 1024}, [
        [pf("start", {"requestId": RID}), fn("a" * 1000 + "\n"), fn("b" * 1020 + "\n"), fn("é" * 1500 + "\n"),
         fn(f"[WARN]\t{T}\t{RID2}\t" + "c" * 3000 + "\n"), fn("d" * 5000), fn({"message": "e" * 2000})],
    ]),
    ("managed instances: no request id from platform.start", {"attribute_by_start": False}, [
        [pf("start", {"requestId": RID}), fn("plain\n"), fn(f"[INFO]\t{T}\t{RID2}\tfrom the line\n"),
         fn({"message": "json", "requestId": RID, "tenantId": "t-2"})],
    ]),
]


def python_answers() -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO / "extension" / "python"))
    from loki_telemetry_extension.records import RecordConverter

    out = []
    for name, opts, deliveries in CASES:
        conv = RecordConverter(ship_platform=opts.get("ship_platform", False),
                               ship_extension=opts.get("ship_extension", False),
                               max_line_bytes=opts.get("max_line_bytes", 256_000),
                               attribute_by_start=opts.get("attribute_by_start", True))
        steps = []
        for delivery in deliveries:
            body = json.dumps(delivery, ensure_ascii=bool(opts.get("ascii_body")))
            c = conv.convert(body.encode())
            steps.append({
                "body": body,
                "entries": [[s, str(ts), line, list(meta.items()) if meta else []]
                            for s, ts, line, meta in c.entries],
                "runtime_done": [[rid, str(ns)]
                                 for rid, ns in zip(c.runtime_done, c.runtime_done_ns, strict=True)],
                "lambda_dropped_records": c.lambda_dropped_records,
            })
        out.append({"name": name, "options": opts, "steps": steps})
    return out


def render() -> str:
    return json.dumps(python_answers(), indent=1, ensure_ascii=False) + "\n"


def test_go_test_data_holds_the_python_builds_current_entries() -> None:
    assert DATA.read_text(encoding="utf-8") == render(), (
        "the Python build's entries changed: run "
        "`.venv/bin/python tests/extension_native/test_records_parity.py`, then `make test-native`"
    )


if __name__ == "__main__":
    DATA.write_text(render(), encoding="utf-8")
