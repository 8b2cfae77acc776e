"""The local Lambda emulator behaves like Lambda where the extension depends on it.

Real parts only: awslambdaric runs the handlers under tests/harness/functions/basic and a
small stdlib test extension (functions/ext/recorder.py) records, in a JSON-lines file,
every event and every telemetry batch it receives.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.lambda_emulator import LambdaEmulator, LambdaInitError

FUNCTIONS = Path(__file__).parent / "functions"
RECORDER = FUNCTIONS / "ext" / "recorder.py"
CODE = FUNCTIONS / "basic"
FAST = {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}


def subscription(types: list[str], buffering: dict[str, int]) -> dict[str, Any]:
    """A recorder's Telemetry API subscription request (the current schema)."""
    return {"schemaVersion": "2022-12-13", "types": types, "buffering": buffering}


class Recording:
    def __init__(self, rec_dir: Path, name: str) -> None:
        self.path = rec_dir / f"{name}.jsonl"

    def lines(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [o for o in out if kind is None or o["kind"] == kind]

    def items(self, type_prefix: str = "") -> list[dict[str, Any]]:
        return [it for b in self.lines("batch") for it in b["items"] if it["type"].startswith(type_prefix)]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)  # polling a file another process writes, bounded by the deadline
        return True


@pytest.fixture
def layer(tmp_path: Path) -> Callable[..., tuple[Path, dict[str, str], dict[str, Recording]]]:
    """Build a layer with recorder extensions: ``layer(name=config, ...)``."""

    def build(**configs: dict[str, Any]) -> tuple[Path, dict[str, str], dict[str, Recording]]:
        root = tmp_path / "layer"
        (root / "extensions").mkdir(parents=True, exist_ok=True)
        rec_dir = tmp_path / "rec"
        rec_dir.mkdir(exist_ok=True)
        source = RECORDER.read_text()
        recs = {}
        for name, cfg in configs.items():
            exe = root / "extensions" / name
            exe.write_text(f"#!{sys.executable}\n{source}")
            exe.chmod(0o755)
            (rec_dir / f"{name}.config.json").write_text(json.dumps(cfg))
            recs[name] = Recording(rec_dir, name)
        return root, {"REC_DIR": str(rec_dir)}, recs

    return build


@pytest.fixture
def emulators() -> Iterator[list[LambdaEmulator]]:
    """Emulators created by a test; closed (every process killed) even when it fails."""
    made: list[LambdaEmulator] = []
    yield made
    for lam in made:
        lam.close()


def _emulator(made: list[LambdaEmulator], **kwargs: Any) -> LambdaEmulator:
    kwargs.setdefault("handler", "app.handler")
    kwargs.setdefault("code_dir", CODE)
    lam = LambdaEmulator(**kwargs)
    made.append(lam)
    return lam


def test_lifecycle_order_and_invoke_event(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "function"], FAST),
            "wait_runtime_done": True,
        }
    )
    lam = _emulator(emulators, layers=[root], env=env, function_name="fn-a", timeout_s=5)
    init = lam.start()
    assert init.extensions == ("rec",)
    # GIVEN an initialised environment, THEN init ran in Lambda's order.
    trace = [(what, who) for _, what, who in lam.events]

    def at(what: str, who: str) -> int:
        return trace.index((what, who))

    # the extension's own steps in order; the runtime starts once every extension registered
    assert at("start", "rec") < at("register", "rec") < at("subscribe", "rec") < at("next", "rec")
    assert at("register", "rec") < at("start", "runtime") < at("next", "runtime")
    # and the environment froze once both waited in next
    assert (
        trace.index(("freeze", "sandbox"))
        == len(trace) - 1
        == max(at("next", "rec"), at("next", "runtime")) + 1
    )
    # WHEN invoked
    result = lam.invoke({"lines": 2, "echo": "x"})
    assert result.status == "success" and result.payload == {"ok": True, "echo": "x"}
    whats = [(what, who) for _, what, who in lam.events][len(trace) :]
    assert whats[0] == ("thaw", "sandbox")
    assert whats[-1] == ("freeze", "sandbox")
    # the invoke ended (freeze) only after the runtime answered and the extension was back in next
    assert whats.index(("response", "runtime")) < len(whats) - 1
    assert ("next", "rec") in whats[:-1] and ("next", "runtime") in whats[:-1]
    # THEN the extension got an INVOKE event as documented
    rec = recs["rec"]
    invoke = next(e["event"] for e in rec.lines("event") if e["event"]["eventType"] == "INVOKE")
    assert invoke["requestId"] == result.request_id
    assert invoke["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn-a"
    assert abs(invoke["deadlineMs"] - time.time() * 1000) < 6000
    # and the register reply carried the function's identity
    assert rec.lines("register")[0]["body"] == {
        "functionName": "fn-a",
        "functionVersion": "$LATEST",
        "handler": "app.handler",
    }
    shut = lam.shutdown()
    assert shut.exited_by_themselves == ("rec",) and not shut.sigkill_needed
    # init-time output was buffered and delivered once the extension subscribed
    texts = [it["record"] for it in rec.items("function")]
    assert texts[0] == "init line from module scope\n"
    assert [t for t in texts if t.startswith("line ")] == [
        f"line {i} of {result.request_id}\n" for i in range(2)
    ]
    platform = [it["type"] for it in rec.items("platform.")]
    assert platform[:2] == ["platform.initStart", "platform.extension"]
    assert "platform.telemetrySubscription" in platform
    assert platform.index("platform.start") < platform.index("platform.runtimeDone")
    done = next(it["record"] for it in rec.items("platform.runtimeDone"))
    assert done["requestId"] == result.request_id and done["status"] == "success"
    assert set(done["metrics"]) == {"durationMs", "producedBytes"}
    # every function line precedes the invoke's runtimeDone
    types = [it["type"] for it in rec.items()]
    last_fn = max(i for i, t in enumerate(types) if t == "function")
    assert last_fn < types.index("platform.runtimeDone")


def test_frozen_processes_are_stopped_and_get_no_telemetry(
    layer: Any, emulators: list[LambdaEmulator]
) -> None:
    # The recorder calls next at once on the first invoke, and works 300 ms on later ones.
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["function"], FAST),
            "work_ms": 300,
            "work_from_invoke": 2,
        }
    )
    lam = _emulator(emulators, layers=[root], env=env)
    with lam:
        rec = recs["rec"]
        # WHEN an invoke prints lines and the extension calls next at once
        lam.invoke({"lines": 50})
        # THEN every process is really stopped (state T in /proc) ...
        assert set(lam.process_states().values()) == {"T"}
        # ... the youngest lines are still buffered (younger than timeoutMs at the freeze),
        # and nothing arrives while frozen: observe for 12x the subscription's timeoutMs.
        batches, pending = len(rec.lines("batch")), lam.pending_telemetry()
        assert pending > 0
        window_end = time.monotonic() + 0.3
        while time.monotonic() < window_end:
            assert len(rec.lines("batch")) == batches
            time.sleep(0.02)
        assert lam.pending_telemetry() == pending
        # WHEN the next invoke thaws the environment, THEN they are delivered while it runs
        lam.invoke({"lines": 0})
        assert len(rec.items("function")) == 51 and lam.pending_telemetry() == 0
        assert set(lam.process_states().values()) == {"T"}


def test_subscribe_validation_matches_aws_limits(layer: Any, emulators: list[LambdaEmulator]) -> None:
    ok = {
        "schemaVersion": "2022-12-13",
        "types": ["function"],
        "buffering": FAST,
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"},
    }
    bad = [
        {**ok, "schemaVersion": "2021-01-01"},
        {**ok, "types": []},
        {**ok, "types": ["function", "bogus"]},
        {**ok, "buffering": {**FAST, "maxItems": 999}},
        {**ok, "buffering": {**FAST, "maxItems": 10001}},
        {**ok, "buffering": {**FAST, "maxBytes": 262143}},
        {**ok, "buffering": {**FAST, "maxBytes": 1048577}},
        {**ok, "buffering": {**FAST, "timeoutMs": 24}},
        {**ok, "buffering": {**FAST, "timeoutMs": 30001}},
        {**ok, "destination": {"protocol": "HTTP", "URI": "https://sandbox.localdomain:4243"}},
        {**ok, "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:9001"}},
        {**ok, "destination": {"protocol": "TCP", "URI": "http://sandbox.localdomain:4243"}},
    ]
    edges = [
        {**ok, "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}},
        {**ok, "buffering": {"maxItems": 10000, "maxBytes": 1048576, "timeoutMs": 30000}},
        {**ok, "schemaVersion": "2025-01-29", "types": ["platform", "function", "extension"]},
    ]
    root, env, recs = layer(rec={"probes": bad + edges})
    with _emulator(emulators, layers=[root], env=env):
        probes = recs["rec"].lines("probe")
    assert [p["status"] for p in probes] == [400] * len(bad) + [200] * len(edges)
    for p in probes[: len(bad)]:
        assert p["body"]["errorType"] == "ValidationError" and p["body"]["errorMessage"]
    assert "maxItems" in probes[3]["body"]["errorMessage"]


def test_subscription_closed_and_unknown_identifier(emulators: list[LambdaEmulator]) -> None:
    import urllib.error
    import urllib.request

    lam = _emulator(emulators)
    with lam:
        base = f"http://{lam.runtime_api}"
        for method, path, headers, body, status, etype in [
            (
                "GET",
                "/2020-01-01/extension/event/next",
                {"Lambda-Extension-Identifier": "nope"},
                None,
                403,
                "Extension.UnknownExtensionIdentifier",
            ),
            (
                "POST",
                "/2020-01-01/extension/register",
                {"Lambda-Extension-Name": "late"},
                b'{"events":["INVOKE"]}',
                403,
                "Extension.RegistrationClosed",
            ),
        ]:
            req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=5)
            assert err.value.code == status
            assert json.loads(err.value.read())["errorType"] == etype


def test_buffering_limits_are_honoured(layer: Any, emulators: list[LambdaEmulator]) -> None:
    # timeoutMs is long, so only maxItems / maxBytes can cut a batch during the bursts.
    root, env, recs = layer(
        items={
            "subscribe": subscription(
                ["function"], {"maxItems": 1000, "maxBytes": 1048576, "timeoutMs": 1000}
            ),
            "work_ms": 1300,
            "work_from_invoke": 3,
        },
        size={
            "subscribe": subscription(
                ["function"], {"maxItems": 10000, "maxBytes": 262144, "timeoutMs": 1000}
            ),
            "work_ms": 1300,
            "work_from_invoke": 3,
        },
    )
    lam = _emulator(emulators, layers=[root], env=env, timeout_s=10)
    with lam:
        lam.invoke({"lines": 2500})
        lam.invoke({"lines": 400, "width": 2000})
        lam.invoke({"lines": 0})  # thawed for 1.3 s: the rest is delivered by timeout
        for rec in recs.values():
            assert len(rec.items("function")) == 2901
        # maxItems caps the number of records per POST
        sizes = [len(b["items"]) for b in recs["items"].lines("batch")]
        assert max(sizes) == 1000 and sizes.count(1000) >= 2
        # maxBytes caps the bytes per POST (array brackets and commas aside)
        batches = recs["size"].lines("batch")
        assert all(b["bytes"] <= 262144 + len(b["items"]) + 1 for b in batches)
        assert max(b["bytes"] for b in batches) > 200_000

    # timeoutMs: a lone record waits for the timeout before it is sent
    root2, env2, recs2 = layer(
        late={
            "subscribe": subscription(["function"], {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 400}),
            "wait_runtime_done": False,
            "work_ms": 700,
        }
    )
    lam2 = _emulator(emulators, layers=[root2], env=env2)
    with lam2:
        lam2.invoke({})  # the init line goes out during this one
        t0 = time.monotonic()
        lam2.invoke({"lines": 1})
        late = recs2["late"]
        batches = [b for b in late.lines("batch") if b["t"] > t0]
        assert len(batches) == 1 and batches[0]["t"] - t0 >= 0.4


def test_json_log_format(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "function"], FAST),
            "wait_runtime_done": True,
        },
        old={
            "subscribe": {
                "schemaVersion": "2022-07-01",
                "types": ["platform", "function"],
                "buffering": FAST,
            },
            "wait_runtime_done": True,
        },
    )
    lam = _emulator(emulators, layers=[root], env=env, log_format="JSON")
    with lam:
        res = lam.invoke({"lines": 1, "log": "first\nsecond"})
    records = [it["record"] for it in recs["rec"].items("function")]
    assert all(isinstance(r, dict) for r in records)
    # schema 2022-07-01 always gets strings: the same objects, serialised
    assert [json.loads(r) for r in (it["record"] for it in recs["old"].items("function"))] == records
    printed = [r for r in records if r["message"] == f"line 0 of {res.request_id}"]
    assert len(printed) == 1 and set(printed[0]) == {"timestamp", "level", "message"}
    logged = [r for r in records if r.get("requestId") == res.request_id and "first" in r["message"]]
    # one logging call spanning two lines is one record, as with Lambda's log fd
    assert len(logged) == 1 and logged[0]["message"] == "first\nsecond" and logged[0]["level"] == "INFO"


def test_text_format_multiline_logging_is_one_record(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "function"], FAST),
            "wait_runtime_done": True,
        }
    )
    with _emulator(emulators, layers=[root], env=env) as lam:
        res = lam.invoke({"log": "alpha\nbeta"})
    records = [it["record"] for it in recs["rec"].items("function")]
    logged = [r for r in records if "alpha" in r]
    assert logged == [f"[INFO]\t{logged[0].split(chr(9))[1]}\t{res.request_id}\talpha\nbeta\n"]


def test_shutdown_deadline_then_sigkill(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(good={}, stuck={"on_shutdown": "hang"})
    lam = _emulator(emulators, layers=[root], env=env)
    lam.start()
    lam.invoke({})
    t0 = time.time()
    res = lam.shutdown("spindown")
    assert res.killed == ("stuck",) and res.sigkill_needed
    assert res.exited_by_themselves == ("good",)
    assert res.exit_codes["stuck"] == -9 and res.exit_codes["good"] == 0
    assert 1900 <= res.duration_ms < 3500
    evt = recs["stuck"].lines("event")[-1]["event"]
    assert evt["eventType"] == "SHUTDOWN" and evt["shutdownReason"] == "spindown"
    assert abs(evt["deadlineMs"] - (t0 * 1000 + 2000)) < 300


def test_extension_crash_resets_environment(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, _ = layer(rec={"crash_on_invoke": 2})
    lam = _emulator(emulators, layers=[root], env=env)
    with lam:
        first_pid = lam.extension_pids["rec"]
        assert lam.invoke({}).status == "success"
        crashed = lam.invoke({})
        assert crashed.status == "failure" and crashed.error is not None
        assert crashed.error["errorType"] == "Extension.Crash"
        assert crashed.crashed_extensions == (("rec", 3),) and crashed.reset_reason == "failure"
        assert lam.resets[0][0] == "failure"
        # the next invoke runs in a fresh environment
        again = lam.invoke({"echo": 1})
        assert again.status == "success" and again.payload["echo"] == 1
        assert len(lam.init_results) == 2 and lam.extension_pids["rec"] != first_pid


def test_function_timeout_resets(emulators: list[LambdaEmulator]) -> None:
    lam = _emulator(emulators, timeout_s=0.5)
    with lam:
        pid = lam.runtime_pid
        res = lam.invoke({"sleep": 3})
        assert res.status == "timeout" and res.error is not None
        assert res.error["errorType"] == "Sandbox.Timedout" and res.reset_reason == "timeout"
        assert not Path(f"/proc/{pid}").exists() or lam.process_states() != {}
        assert lam.invoke({"echo": 2}).payload == {"ok": True, "echo": 2}


def test_logs_dropped_when_listener_is_slow(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "function"], FAST),
            "listener_delay_s": 0.3,
            "wait_runtime_done": True,
        }
    )
    lam = _emulator(emulators, layers=[root], env=env, telemetry_buffer_limit_bytes=64 * 1024, timeout_s=3)
    with lam:
        lam.invoke({"lines": 3000})
        lam.invoke({"lines": 0})
        rec = recs["rec"]
        assert lam.records_dropped > 0
        dropped = [it["record"] for it in rec.items("platform.logsDropped")]
        assert dropped and sum(d["droppedRecords"] for d in dropped) == lam.records_dropped
        assert dropped == lam.logs_dropped_sent
        assert sum(d["droppedBytes"] for d in dropped) == lam.stats.dropped_bytes
        fn = [it["record"] for it in rec.items("function")]
        assert len(fn) == len(set(fn)) and 0 < len(fn) < 3001
        # every function line that did not arrive is accounted for as dropped
        assert 3001 - len(fn) <= lam.records_dropped


def test_delivery_retries_when_listener_fails(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["function"], FAST),
            "listener_fail_first": 3,
            "wait_runtime_done": False,
            "work_ms": 1500,
        }
    )
    with _emulator(emulators, layers=[root], env=env) as lam:
        lam.invoke({"lines": 5})
        assert lam.stats.failed_posts == 3
        # delivered after the retries, while the extension worked, in the original order
        texts = [it["record"] for it in recs["rec"].items("function")]
        assert texts[0] == "init line from module scope\n"
        assert [t.split(" of ")[0] for t in texts[1:]] == [f"line {i}" for i in range(5)]


def test_extension_environment_and_python_choice(tmp_path: Path, emulators: list[LambdaEmulator]) -> None:
    py310 = next(Path("/root/.pyenv/versions").glob("3.10.*/bin/python3"), None)
    assert py310 is not None, "this test needs pyenv's Python 3.10 (present on the project's machines)"
    root = tmp_path / "layer"
    (root / "extensions").mkdir(parents=True)
    out = tmp_path / "env.json"
    launcher = root / "extensions" / "shext"
    # A /bin/sh launcher like the real one: `python3` must resolve to the chosen interpreter.
    launcher.write_text(
        "#!/bin/sh\nexec python3 -I -S -c 'import json,os,sys,urllib.request as u\n"
        f'json.dump({{"env": dict(os.environ), "v": sys.version_info[:2]}}, open("{out}", "w"))\n'
        'api="http://"+os.environ["AWS_LAMBDA_RUNTIME_API"]+"/2020-01-01/extension"\n'
        'r=u.urlopen(u.Request(api+"/register", data=b"{\\"events\\":[\\"SHUTDOWN\\"]}", '
        'headers={"Lambda-Extension-Name":"shext"}))\n'
        'i=r.headers["Lambda-Extension-Identifier"]\n'
        'u.urlopen(u.Request(api+"/event/next", headers={"Lambda-Extension-Identifier":i}))\'\n'
    )
    launcher.chmod(0o755)
    with _emulator(emulators, layers=[root], extension_python=py310, env={"MY_VAR": "1"}) as lam:
        api = lam.runtime_api
        assert os.readlink(f"/proc/{lam.extension_pids['shext']}/exe").startswith(str(py310.parent.parent))
    seen = json.loads(out.read_text())
    assert seen["v"] == [3, 10]
    env = seen["env"]
    assert env["MY_VAR"] == "1" and env["AWS_LAMBDA_FUNCTION_NAME"] == "test-function"
    assert env["AWS_LAMBDA_RUNTIME_API"] == api
    for withheld in (
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
    ):
        assert withheld not in env


def test_init_errors_fail_init(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, _ = layer(rec={"init_error": True})
    with pytest.raises(LambdaInitError) as err:
        _emulator(emulators, layers=[root], env=env).start()
    assert err.value.error_type == "Extension.Test"
    with pytest.raises(LambdaInitError) as err2:
        _emulator(emulators, handler="missing_module.handler").start()
    assert err2.value.error_type == "Runtime.ImportModuleError"


def test_no_process_outlives_close(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, _ = layer(rec={"on_shutdown": "hang"})
    lam = _emulator(emulators, layers=[root], env=env)
    lam.start()
    pids = [*lam.extension_pids.values(), lam.runtime_pid]
    lam.close()  # no shutdown: as when a test fails mid-way
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()


def test_post_runtime_time_is_the_extensions_work(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, _ = layer(rec={"work_ms": 150})
    with _emulator(emulators, layers=[root], env=env) as lam:
        res = lam.invoke({})
    assert res.status == "success"
    # the work starts at INVOKE, so the runtime's own time overlaps part of it
    assert 100 <= res.post_runtime_ms < 1000
    assert res.total_ms >= res.duration_ms + res.post_runtime_ms


def test_handler_error_is_reported_not_reset(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform"], FAST),
            "wait_runtime_done": True,
        }
    )
    with _emulator(emulators, layers=[root], env=env) as lam:
        res = lam.invoke({"fail": "boom"})
        assert res.status == "error" and res.error is not None and res.reset_reason is None
        assert res.error["errorType"] == "ValueError" and res.error["errorMessage"] == "boom"
        assert lam.invoke({"echo": 3}).payload["echo"] == 3
        assert len(lam.init_results) == 1
    done = [it["record"] for it in recs["rec"].items("platform.runtimeDone")]
    assert done[0]["status"] == "error" and done[0]["errorType"] == "ValueError"
    assert done[1]["status"] == "success"


def test_internal_extension_cannot_register_for_shutdown(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(rec={"register_as": "not-a-file", "events": ["INVOKE", "SHUTDOWN"]})
    with pytest.raises(LambdaInitError):
        _emulator(emulators, layers=[root], env=env).start()
    reg = recs["rec"].lines("register")[0]
    assert reg["status"] == 403 and reg["body"]["errorType"] == "Extension.InvalidEventType"


def test_extension_output_becomes_extension_records(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "extension"], FAST),
            "wait_runtime_done": True,
            "say": "hello from the extension",
        }
    )
    with _emulator(emulators, layers=[root], env=env) as lam:
        lam.invoke({})
        assert lam.extension_stderr("rec") == ["hello from the extension\n"]
    assert [it["record"] for it in recs["rec"].items("extension")] == ["hello from the extension\n"]


def test_crash_while_frozen_resets_before_next_invoke(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, _ = layer(rec={})
    with _emulator(emulators, layers=[root], env=env) as lam:
        lam.invoke({})
        pid = lam.extension_pids["rec"]
        assert lam.process_states()["rec"] == "T"
        os.kill(pid, 9)
        # wait until the emulator has reaped it (its lifecycle trace says so)
        deadline = time.monotonic() + 5
        while ("exit", "rec") not in [(w, n) for _, w, n in lam.events] and time.monotonic() < deadline:
            time.sleep(0.01)
        res = lam.invoke({"echo": 4})
        assert res.status == "success" and res.payload["echo"] == 4
        assert [r[0] for r in lam.resets] == ["failure"]
        assert lam.extension_pids["rec"] != pid


def test_shutdown_during_an_invoke(layer: Any, emulators: list[LambdaEmulator]) -> None:
    import threading

    root, env, _ = layer(rec={})
    lam = _emulator(emulators, layers=[root], env=env, timeout_s=20)
    lam.start()
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(lam.invoke({"lines": 1, "sleep": 10})))
    worker.start()
    # the handler has started once its first line has been read
    deadline = time.monotonic() + 10
    while lam.function_records_emitted < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    shut = lam.shutdown("spindown")
    worker.join(10)
    assert not worker.is_alive()
    assert results[0].status == "failure" and results[0].error["errorType"] == "Sandbox.ShutDown"
    assert shut.exited_by_themselves == ("rec",) and shut.duration_ms < 2000
    assert not lam.resets


def test_cli_runs_invokes_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.lambda_emulator.__main__ import main

    code = main(
        ["--handler", "app.handler", "--code-dir", str(CODE), "--event", '{"echo": 5}', "--invokes", "2"]
    )
    assert code == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [next(iter(d)) for d in docs] == [
        "init",
        "invoke",
        "invoke",
        "shutdown",
        "stats",
        "extension_stderr",
    ]
    assert docs[1]["invoke"]["payload"] == {"ok": True, "echo": 5}
    assert docs[4]["stats"]["function_records"] == 3  # the init line and one line per invoke


def test_init_budget_is_enforced(layer: Any, emulators: list[LambdaEmulator]) -> None:
    root, env, _ = layer(rec={"never_ready": True})
    lam = _emulator(emulators, layers=[root], env=env, init_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(LambdaInitError) as err:
        lam.start()
    assert err.value.error_type == "Sandbox.Timedout"
    assert 1.0 <= time.monotonic() - t0 < 3.0
    assert not Path(f"/proc/{lam.extension_pids['rec']}").exists() or lam.process_states()["rec"] in (
        "Z",
        "X",
    )


def test_extension_that_cannot_start_fails_init(tmp_path: Path, emulators: list[LambdaEmulator]) -> None:
    root = tmp_path / "layer"
    (root / "extensions").mkdir(parents=True)
    script = root / "extensions" / "no-shebang"
    script.write_text("print('started without an interpreter line')\n")
    script.chmod(0o755)
    with pytest.raises(LambdaInitError) as err:
        _emulator(emulators, layers=[root]).start()
    assert err.value.error_type == "Extension.LaunchError" and "no-shebang" in err.value.message


def test_listener_closing_keepalive_connections_costs_no_retry(
    layer: Any, emulators: list[LambdaEmulator]
) -> None:
    root, env, recs = layer(
        rec={
            "subscribe": subscription(["platform", "function"], FAST),
            "wait_runtime_done": True,
            "close_idle": True,
        }
    )
    with _emulator(emulators, layers=[root], env=env) as lam:
        for _ in range(5):
            lam.invoke({"lines": 3})
        assert lam.stats.failed_posts == 0
        assert len(recs["rec"].items("function")) == 16


def test_extension_overrunning_the_deadline_times_the_invoke_out(
    layer: Any, emulators: list[LambdaEmulator]
) -> None:
    root, env, recs = layer(rec={"work_ms": 1500})
    with _emulator(emulators, layers=[root], env=env, timeout_s=0.5) as lam:
        res = lam.invoke({"echo": 6})
        # the caller got the function's response; the invoke still timed out and reset
        assert res.payload == {"ok": True, "echo": 6}
        assert res.status == "timeout" and res.error is not None and res.reset_reason == "timeout"
        assert res.error["errorType"] == "Sandbox.Timedout"
        shutdown = recs["rec"].lines("event")[-1]["event"]
        assert shutdown["eventType"] == "SHUTDOWN" and shutdown["shutdownReason"] == "timeout"
