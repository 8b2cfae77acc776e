"""Lambda Managed Instances mode and tenant isolation, on their own (the recorder extension).

Concurrency is proven without timing: concurrent handlers meet in a rendezvous directory
(each waits until all are in flight), which sequential invokes could never do.
"""

# ruff: noqa: F811  (pytest fixtures imported from the main module are parameters here)
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from test_lambda_emulator import CODE, FAST, FUNCTIONS, _emulator, emulators, layer  # noqa: F401

from harness.lambda_emulator import LambdaEmulator, LambdaInitError

SCHEMA = "2025-01-29"
MESSAGES = ("arrived", "leaving")
RUNTIMES = {
    "python": {"handler": "app.handler", "code_dir": CODE},
    "node": {"handler": "index.handler", "code_dir": FUNCTIONS / "node", "runtime": "nodejs22.x"},
}


def _sub(schema: str = SCHEMA, types: tuple[str, ...] = ("platform", "function")) -> dict[str, Any]:
    return {"schemaVersion": schema, "types": list(types), "buffering": FAST}


def test_registering_invoke_is_refused(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(rec={"events": ["INVOKE", "SHUTDOWN"]})
    lam = _emulator(emulators, layers=[root], env=env, managed_instances=True)
    # WHEN an extension asks for INVOKE, THEN it gets 403 Extension.InvalidEventType
    # (and, as it gives up, init fails)
    with pytest.raises(LambdaInitError):
        lam.start()
    (reg,) = recs["rec"].lines("register")
    assert reg["status"] == 403 and reg["body"]["errorType"] == "Extension.InvalidEventType"
    # while the same extension registers fine on classic Lambda
    classic = _emulator(emulators, layers=[root], env=env)
    with classic:
        assert recs["rec"].lines("register")[-1]["status"] == 200


def test_telemetry_api_accepts_only_schema_2025_01_29(layer: Any, emulators: list[LambdaEmulator]) -> None:
    probes = [_sub("2022-07-01"), _sub("2022-12-13"), _sub(SCHEMA)]
    for p in probes:
        p["destination"] = {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"}
    root, env, recs = layer(rec={"events": ["SHUTDOWN"], "probes": probes})
    with _emulator(emulators, layers=[root], env=env, managed_instances=True):
        got = recs["rec"].lines("probe")
    assert [p["status"] for p in got] == [400, 400, 200]
    for p in got[:2]:
        assert p["body"]["errorType"] == "ValidationError"
        assert SCHEMA in p["body"]["errorMessage"] and "Managed Instances" in p["body"]["errorMessage"]


@pytest.mark.parametrize("log_format", ["JSON", "Text"])
@pytest.mark.parametrize("runtime", ["python", "node"])
def test_concurrent_invokes_interleave_and_keep_their_request_ids(
    layer: Any, emulators: list[LambdaEmulator], tmp_path: Path, runtime: str, log_format: str
) -> None:
    root, env, recs = layer(rec={"events": ["SHUTDOWN"], "subscribe": _sub()})
    rec = recs["rec"]
    parties = 3
    lam = _emulator(
        emulators,
        layers=[root],
        env=env,
        managed_instances=True,
        max_concurrency=parties,
        log_format=log_format,
        timeout_s=10,  # room for the rendezvous (5 s at most) on a loaded machine
        **RUNTIMES[runtime],
    )
    room = tmp_path / "room"
    room.mkdir()
    with lam:
        # WHEN three invokes run at once
        results = lam.invoke_many([{"rendezvous": str(room), "parties": parties}] * parties)
        # THEN all three were in flight together (they met in the rendezvous)
        assert [r.status for r in results] == ["success"] * parties
        assert all(r.payload["together"] for r in results)
        # and the environment was never frozen, and keeps delivering telemetry with no
        # invoke running: every platform.report arrives while the processes idle
        assert "T" not in lam.process_states().values()
        assert ("freeze", "sandbox") not in [(w, who) for _, w, who in lam.events]
        assert rec.wait_for(lambda: len(rec.items("platform.report")) == parties)
        before_shutdown = time.time() * 1000
        shut = lam.shutdown()
    ids = {r.request_id for r in results}
    # THEN each logging call is one record carrying its own invoke's request id (and the
    # runtime's timestamp of the call)
    logs = [it["record"] for it in rec.items("function")]
    if log_format == "JSON":
        tagged = [
            (r["message"], r["requestId"], r["timestamp"]) for r in logs if r.get("message") in MESSAGES
        ]
    else:
        # Python: "[INFO]\t<time>\t<requestId>\t<message>\n"; Node: "<time>\t<requestId>\tINFO\t<message>\n"
        fields = [t.rstrip("\n").split("\t") for t in logs if t.rstrip("\n").endswith(MESSAGES)]
        if runtime == "python":
            tagged = [(f[3], f[2], f[1]) for f in fields]
        else:
            tagged = [(f[3], f[1], f[0]) for f in fields]
    assert sorted((m, i) for m, i, _ in tagged) == sorted([(m, i) for m in MESSAGES for i in ids])
    # and the requests' records interleave: every arrival is stamped before any departure
    last_arrival = max(t for m, _, t in tagged if m == "arrived")
    assert all(t >= last_arrival for m, _, t in tagged if m == "leaving")
    # and the platform events are Managed Instances': start and report, no runtimeDone
    types = [it["type"] for it in rec.items("platform.")]
    assert "platform.runtimeDone" not in types
    starts = [it["record"] for it in rec.items("platform.start")]
    assert {s["requestId"] for s in starts} == ids
    assert all(s["functionArn"].endswith(":function:test-function") for s in starts)
    reports = [it["record"] for it in rec.items("platform.report")]
    assert {r["requestId"] for r in reports} == ids
    assert all(
        set(r) == {"requestId", "status", "metrics"} and set(r["metrics"]) == {"durationMs"} for r in reports
    )
    init = next(it["record"] for it in rec.items("platform.initStart"))
    assert init["initializationType"] == "lambda-managed-instances"
    # and the extension saw Lambda's mode and only ever one event: SHUTDOWN with its deadline
    seen = rec.lines("env")[0]["env"]
    assert seen["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"
    (event,) = [e["event"] for e in rec.lines("event")]
    assert event["eventType"] == "SHUTDOWN" and event["shutdownReason"] == "spindown"
    assert 0 < event["deadlineMs"] - before_shutdown <= 2000 + 500
    assert shut.exited_by_themselves == ("rec",)


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_tenant_id_in_json_logs_and_platform_events(
    layer: Any, emulators: list[LambdaEmulator], runtime: str
) -> None:
    root, env, recs = layer(rec={"subscribe": _sub("2022-12-13"), "wait_runtime_done": True})
    rec = recs["rec"]
    lam = _emulator(
        emulators, layers=[root], env=env, log_format="JSON", tenancy_config="PER_TENANT", **RUNTIMES[runtime]
    )
    with lam:
        blue = lam.invoke({"lines": 0, "log": "for blue"}, tenant_id="blue")
        blue_again = lam.invoke({"lines": 0, "log": "again"}, tenant_id="blue")
        assert lam.resets == []  # same tenant, same environment
        # WHEN another tenant invokes, THEN it gets an environment of its own
        green = lam.invoke({"lines": 0, "log": "for green"}, tenant_id="green")
        assert [reason for reason, _ in lam.resets] == ["spindown"]
        # (a classic environment is frozen after each invoke: an invoke's platform.report
        # goes out during the next one)
        green_again = lam.invoke({"lines": 0, "log": "green again"}, tenant_id="green")
    invokes = (blue, blue_again, green, green_again)
    assert {r.status for r in invokes} == {"success"}
    # THEN the function's JSON log records carry the invoke's tenantId at top level
    logs = {r["message"]: r for r in (it["record"] for it in rec.items("function")) if "message" in r}
    assert logs["for blue"]["tenantId"] == "blue" and logs["for blue"]["requestId"] == blue.request_id
    assert logs["for green"]["tenantId"] == "green"
    # and platform.start / runtimeDone / report carry it in the record
    tenant_of = {r.request_id: t for r, t in zip(invokes, ["blue", "blue", "green", "green"], strict=True)}
    for kind in ("platform.start", "platform.runtimeDone"):
        records = [it["record"] for it in rec.items(kind)]
        assert {r["requestId"]: r["tenantId"] for r in records} == tenant_of
    reports = {it["record"]["requestId"]: it["record"]["tenantId"] for it in rec.items("platform.report")}
    assert {blue.request_id, green.request_id} <= set(reports)
    assert reports == {i: tenant_of[i] for i in reports}


def test_tenant_id_must_match_the_tenancy_config(emulators: list[LambdaEmulator]) -> None:
    lam = _emulator(emulators)
    with pytest.raises(ValueError, match="tenancy_config"):
        lam.invoke({}, tenant_id="blue")
    isolated = _emulator(emulators, tenancy_config="PER_TENANT")
    with pytest.raises(ValueError, match="tenant_id is required"):
        isolated.invoke({})


def test_managed_instances_options_are_validated() -> None:
    with pytest.raises(ValueError, match="max_concurrency needs managed_instances"):
        LambdaEmulator(handler="app.handler", code_dir=CODE, max_concurrency=2)
    with pytest.raises(ValueError, match="tenancy_config"):
        LambdaEmulator(handler="app.handler", code_dir=CODE, tenancy_config="SHARED")
