"""The real extension process against in-test fakes of the Extensions/Telemetry APIs and Loki."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from ext_fakes import FakeLambda, FakeLoki, fn, iso, platform
from ext_process import LAUNCHER, start_extension


def _finish(proc: subprocess.Popen[str], fake: FakeLambda) -> tuple[int, str]:
    fake.shutdown()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def test_registers_subscribes_and_ships_lines_in_batch_mode(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    # GIVEN the extension with a small batch size
    proc = start_extension(
        fake_lambda.runtime_api, {"LOKI_URL": loki.url, "DISPATCH_MIN_BATCH_SIZE": "3", "LOKI_FLUSH": "batch"}
    )
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    # THEN it registered for INVOKE+SHUTDOWN under its file name and subscribed before next
    assert fake_lambda.registered["name"] == "loki-telemetry-extension"
    sub = fake_lambda.subscription
    assert sub is not None and sub["_id"] == "ext-id-1"
    assert sub["schemaVersion"] == "2025-01-29"  # the only one Managed Instances accept
    assert set(sub["types"]) == {"platform", "function"}
    assert sub["destination"]["URI"].startswith("http://sandbox.localdomain:")
    # WHEN an invoke's lines arrive
    fake_lambda.invoke("req-1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    assert (
        fake_lambda.deliver(
            [platform("start", {"requestId": "req-1"}), fn("one\n"), fn("two\n"), fn("three\n")]
        )
        == 200
    )
    # THEN the batch is pushed without waiting for SHUTDOWN
    assert loki.wait_for(lambda lk: len(lk.stored()) >= 3)
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    stored = loki.stored()
    assert [e[2] for e in stored] == ["one", "two", "three"]
    labels = stored[0][0]
    assert labels == {"source": "lambda", "function": "unit-fn"}
    assert stored[0][3] == {"request_id": "req-1"}


def test_shutdown_drains_what_is_left(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    proc = start_extension(fake_lambda.runtime_api, {"LOKI_URL": loki.url, "LOKI_FLUSH_INTERVAL_MS": "60000"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    fake_lambda.deliver([fn(f"line {i}\n") for i in range(10)])
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    assert [e[2] for e in loki.stored()] == [f"line {i}" for i in range(10)]


def test_ship_before_freeze_flushes_before_next(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    proc = start_extension(
        fake_lambda.runtime_api,
        {"LOKI_URL": loki.url, "LOKI_SHIP_BEFORE_FREEZE": "true", "LOKI_FLUSH_INTERVAL_MS": "60000"},
    )
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    fake_lambda.deliver([platform("start", {"requestId": "r1"}), fn("a\n"), fn("b\n")])
    # The extension must not call next before runtimeDone arrived and the lines were pushed.
    assert not fake_lambda.wait(lambda f: f.next_calls >= 2, timeout=0.3)
    fake_lambda.deliver([fn("c\n"), platform("runtimeDone", {"requestId": "r1", "status": "success"})])
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    assert [e[2] for e in loki.stored()] == ["a", "b", "c"]  # pushed before next was called
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err


def test_no_url_is_a_noop_that_keeps_calling_next(fake_lambda: FakeLambda) -> None:
    proc = start_extension(fake_lambda.runtime_api, {})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    assert fake_lambda.subscription is None
    code, err = _finish(proc, fake_lambda)
    assert code == 0
    assert "[loki-telemetry-extension] no Loki endpoint: set LOKI_URL" in err


def test_subscribe_202_means_not_supported_and_keeps_running(loki: FakeLoki) -> None:
    fake = FakeLambda(subscribe_status=202)
    try:
        proc = start_extension(fake.runtime_api, {"LOKI_URL": loki.url})
        assert fake.wait(lambda f: f.next_calls >= 1)
        fake.invoke("r1")
        assert fake.wait(lambda f: f.next_calls >= 2)
        code, err = _finish(proc, fake)
        assert code == 0
        assert "not supported here" in err
    finally:
        fake.close()


def test_launcher_is_executable_with_a_shebang() -> None:
    import os

    assert os.access(LAUNCHER, os.X_OK)
    assert LAUNCHER.read_text().startswith("#!/bin/sh\n")


def test_secret_fetch_failure_names_the_variable_and_stays_a_noop(
    fake_lambda: FakeLambda, loki: FakeLoki
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:loki-x"
    proc = start_extension(
        fake_lambda.runtime_api,
        {
            "LOKI_URL": loki.url,
            "LOKI_BASIC_AUTH_SECRET_ARN": arn,
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "SECRET",
        },
    )
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    # Giving up after subscribing costs the environment nothing: deliveries still get their 200
    assert fake_lambda.deliver([fn("never shipped\n")]) == 200
    assert fake_lambda.deliver([fn("nor this\n")]) == 200
    code, err = _finish(proc, fake_lambda)
    assert code == 0
    assert (
        f"not shipping logs: SecretError: LOKI_BASIC_AUTH_SECRET_ARN: cannot reach the endpoint for '{arn}'"
        in err
    )
    assert loki.requests == []


def test_shutdown_drain_respects_the_deadline_when_loki_hangs(fake_lambda: FakeLambda) -> None:
    import socket
    import time

    srv = socket.socket()  # accepts, never answers
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        proc = start_extension(
            fake_lambda.runtime_api, {"LOKI_URL": f"http://127.0.0.1:{srv.getsockname()[1]}/loki/api/v1/push"}
        )
        assert fake_lambda.wait(lambda f: f.next_calls >= 1)
        fake_lambda.invoke("r1")
        assert fake_lambda.wait(lambda f: f.next_calls >= 2)
        fake_lambda.deliver([fn(f"l{i}\n") for i in range(5)])
        start = time.monotonic()
        fake_lambda.shutdown(deadline_s=1.0)
        _, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - start
        assert proc.returncode == 0
        assert elapsed < 1.0  # exited before the SHUTDOWN deadline (safety margin included)
        assert "SHUTDOWN deadline reached with 5 entries not shipped" in err
        assert "shutdown_deadline=5" in err
    finally:
        srv.close()


def test_shutdown_waits_for_the_last_invokes_late_lines(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    import threading

    # GIVEN an invoke whose lines Lambda still holds when SHUTDOWN comes
    proc = start_extension(fake_lambda.runtime_api, {"LOKI_URL": loki.url})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("last")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    fake_lambda.shutdown(deadline_s=2.0)
    assert fake_lambda.wait(lambda f: "SHUTDOWN" in f.served)
    # WHEN they arrive well after the quiet spell (100 ms buffering + 50 ms) would have ended
    threading.Event().wait(0.4)  # Lambda's lateness is the scenario, not a synchronisation
    fake_lambda.deliver(
        [
            platform("start", {"requestId": "last"}),
            fn("late 1\n"),
            fn("late 2\n"),
            platform("runtimeDone", {"requestId": "last", "status": "success"}),
        ]
    )
    _, err = proc.communicate(timeout=10)
    # THEN they are shipped before the extension exits
    assert proc.returncode == 0, err
    assert [e[2] for e in loki.stored()] == ["late 1", "late 2"]


# --- flush policy ------------------------------------------------------------------------
def _done(request_id: str, ago_s: float = 0.0) -> dict[str, object]:
    """platform.runtimeDone whose event time is ``ago_s`` in the past (the idle gap's start)."""
    return {**platform("runtimeDone", {"requestId": request_id, "status": "success"}),
            "time": iso(time.time() - ago_s)}


def _run_invoke(fake: FakeLambda, n: int, request_id: str, lines: list[str], done_ago_s: float) -> None:
    """INVOKE ``done_ago_s`` after the previous one ended, its lines, its runtimeDone; returns once
    the extension has asked for the next event."""
    if done_ago_s:
        threading.Event().wait(done_ago_s)  # the idle time between invokes is the scenario
    fake.invoke(request_id)
    fake.deliver([platform("start", {"requestId": request_id}), *(fn(x + "\n") for x in lines),
                  _done(request_id, done_ago_s)])
    assert fake.wait(lambda f: f.next_calls >= n + 1)


def test_adaptive_cold_start_invoke_ships_before_next(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    # GIVEN the default mode and no size or age trigger that could ship in the background
    proc = start_extension(fake_lambda.runtime_api, {"LOKI_URL": loki.url, "LOKI_FLUSH_INTERVAL_MS": "60000"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    # WHEN the first invoke writes lines
    fake_lambda.invoke("cold")
    fake_lambda.deliver([platform("start", {"requestId": "cold"}), fn("a\n"), fn("b\n")])
    # THEN next waits for that invoke's runtimeDone and the push
    assert not fake_lambda.wait(lambda f: f.next_calls >= 2, timeout=0.3)
    fake_lambda.deliver([_done("cold")])
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    assert [e[2] for e in loki.stored()] == ["a", "b"]
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err


@pytest.mark.parametrize(("gap_s", "dense"), [(0.0, True), (0.3, False)])
def test_adaptive_three_short_gaps_make_an_invoke_dense(
    fake_lambda: FakeLambda, loki: FakeLoki, gap_s: float, dense: bool
) -> None:
    # (a dense limit far above the test's own latency, a sparse one far below the idle time chosen)
    limit_ms = "5000" if dense else "100"
    proc = start_extension(fake_lambda.runtime_api, {
        "LOKI_URL": loki.url, "LOKI_FLUSH_INTERVAL_MS": "60000", "LOKI_DENSE_GAP_MS": limit_ms})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    # GIVEN three invokes, each arriving gap_s after the previous one's runtimeDone
    for n in range(1, 4):
        _run_invoke(fake_lambda, n, f"r{n}", [f"line {n}"], done_ago_s=gap_s)
        assert [e[2] for e in loki.stored()] == [f"line {i}" for i in range(1, n + 1)]  # shipped before next
    # WHEN a fourth invoke comes
    if gap_s:
        threading.Event().wait(gap_s)
    fake_lambda.invoke("r4")
    fake_lambda.deliver([platform("start", {"requestId": "r4"}), fn("line 4\n")])
    if dense:
        # THEN (dense) the extension calls next at once, without waiting for runtimeDone
        assert fake_lambda.wait(lambda f: f.next_calls >= 5)
        # AND the next invoke has the background sender push what is queued, while it runs
        fake_lambda.invoke("r5")
        assert loki.wait_for(lambda lk: "line 4" in [e[2] for e in lk.stored()])
    else:
        # THEN (sparse) it still waits for runtimeDone and ships before next
        assert not fake_lambda.wait(lambda f: f.next_calls >= 5, timeout=0.3)
        fake_lambda.deliver([_done("r4", gap_s)])
        assert fake_lambda.wait(lambda f: f.next_calls >= 5)
        assert [e[2] for e in loki.stored()][-1] == "line 4"
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err


def test_dense_gap_zero_always_ships_before_next(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    proc = start_extension(fake_lambda.runtime_api, {"LOKI_URL": loki.url, "LOKI_DENSE_GAP_MS": "0"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    for n in range(1, 6):
        _run_invoke(fake_lambda, n, f"r{n}", [f"line {n}"], done_ago_s=0.0)
        assert [e[2] for e in loki.stored()] == [f"line {i}" for i in range(1, n + 1)]
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err


def test_high_water_mark_pushes_before_next_in_batch_mode(fake_lambda: FakeLambda, loki: FakeLoki) -> None:
    # GIVEN batch mode, a 64 KiB buffer (high water at 50 %: 32 KiB), no size or age trigger in reach
    proc = start_extension(fake_lambda.runtime_api, {
        "LOKI_URL": loki.url, "LOKI_FLUSH": "batch", "LOKI_MAX_BUFFER_BYTES": "65536",
        "DISPATCH_MIN_BATCH_SIZE": "10000", "LOKI_FLUSH_INTERVAL_MS": "60000"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    # WHEN an invoke leaves ~40 KiB queued
    fake_lambda.deliver([fn(f"{i:04d} " + "x" * 200 + "\n") for i in range(120)])
    fake_lambda.invoke("r2")
    assert fake_lambda.wait(lambda f: f.next_calls >= 3)
    # THEN the next INVOKE pushed before calling next, down to below the mark (not necessarily all)
    assert loki.requests, "nothing pushed before next although the buffer was above the high-water mark"
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    assert sorted(e[2] for e in loki.stored()) == [f"{i:04d} " + "x" * 200 for i in range(120)]


def test_high_water_mark_keeps_room_for_the_largest_recent_invoke(
    fake_lambda: FakeLambda, loki: FakeLoki
) -> None:
    # GIVEN batch mode, a 256 KiB buffer, the mark at 100 % (only the room kept for the largest
    # recent invoke can lower it), no size or age trigger in reach
    proc = start_extension(fake_lambda.runtime_api, {
        "LOKI_URL": loki.url, "LOKI_FLUSH": "batch", "LOKI_MAX_BUFFER_BYTES": "262144",
        "LOKI_HIGH_WATER_PERCENT": "100", "DISPATCH_MIN_BATCH_SIZE": "10000",
        "LOKI_FLUSH_INTERVAL_MS": "60000"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    # WHEN an invoke writes over half the buffer, its runtimeDone arrives, the next invoke starts
    lines = [f"{i:04d} " + "x" * 200 for i in range(560)]
    fake_lambda.deliver([fn(x + "\n") for x in lines] + [_done("r1")], until_queued=True)
    fake_lambda.invoke("r2")
    assert fake_lambda.wait(lambda f: f.next_calls >= 3)
    # THEN it pushed before next: the room left could not hold another invoke like r1
    assert loki.requests, "nothing pushed before next although the room left was smaller than the last invoke"
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    assert sorted(e[2] for e in loki.stored()) == lines


# --- Managed Instances ------------------------------------------------------------------
RID_B = "8f5e1c2a-1111-2222-3333-444455556666"


def test_managed_instances_register_shutdown_only_and_keep_each_records_request_id(
    fake_lambda: FakeLambda, loki: FakeLoki
) -> None:
    # GIVEN a Managed Instances environment (no INVOKE events at all)
    proc = start_extension(fake_lambda.runtime_api, {
        "LOKI_URL": loki.url, "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
        "LOKI_FLUSH_INTERVAL_MS": "100", "LOKI_TELEMETRY_TYPES": "function,platform"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    assert json.loads(fake_lambda.registered["body"]) == {"events": ["SHUTDOWN"]}
    assert fake_lambda.subscription is not None and fake_lambda.subscription["schemaVersion"] == "2025-01-29"
    # WHEN two concurrent requests' records interleave
    fake_lambda.deliver([
        platform("start", {"requestId": "A", "tenantId": "t-1"}),
        platform("start", {"requestId": RID_B}),
        {**fn(""), "record": {"message": "from A", "level": "INFO", "requestId": "A", "tenantId": "t-1"}},
        fn(f"[INFO]\t2024-03-05T06:07:08.123Z\t{RID_B}\tfrom B\n"),
        fn("plain print\n"),
    ])
    # THEN they are shipped on time alone (no INVOKE, no freeze), each with its own request id
    assert loki.wait_for(lambda lk: len([e for e in lk.stored() if "type" not in e[0]]) == 3)
    fn_meta = {json.loads(e[2])["message"] if e[2].startswith("{") else e[2]: e[3]
               for e in loki.stored() if "type" not in e[0]}
    assert fn_meta == {
        "from A": {"request_id": "A", "level": "INFO", "tenant_id": "t-1"},
        f"[INFO]\t2024-03-05T06:07:08.123Z\t{RID_B}\tfrom B": {"request_id": RID_B, "level": "INFO"},
        "plain print": None,  # never "the last platform.start": requests interleave here
    }
    platform_meta = sorted((e[3] or {}).get("tenant_id", "-") for e in loki.stored() if e[0].get("type"))
    assert platform_meta == ["-", "t-1"]
    assert all("tenant_id" not in e[0] for e in loki.stored())  # metadata, never a label
    # AND SHUTDOWN drains without waiting for a runtimeDone that never comes
    fake_lambda.deliver([fn("last words\n")])
    start = time.monotonic()
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    assert time.monotonic() - start < 1.5
    assert "last words" in [e[2] for e in loki.stored()]


# --- credentials ------------------------------------------------------------------------
def test_credentials_over_http_to_another_host_are_refused_before_subscribing(
    fake_lambda: FakeLambda,
) -> None:
    proc = start_extension(fake_lambda.runtime_api, {
        "LOKI_URL": "http://logs.example.com/loki/api/v1/push",
        "LOKI_BEARER_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:t"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2)
    assert fake_lambda.subscription is None
    code, err = _finish(proc, fake_lambda)
    assert code == 0
    assert ("[loki-telemetry-extension] refusing to send credentials over http:// to logs.example.com; "
            "use an https:// LOKI_URL") in err


def test_launcher_limits_malloc_arenas(tmp_path: object) -> None:
    """Deliveries come on short-lived threads; with glibc's default arenas the freed buffer
    memory stays spread over them and RSS outgrows LOKI_MAX_BUFFER_BYTES (36 MiB for 16 MiB)."""
    import os
    from pathlib import Path

    stub = Path(str(tmp_path)) / "python3"
    stub.write_text('#!/bin/sh\necho "arenas=$MALLOC_ARENA_MAX"\n')
    stub.chmod(0o755)
    out = subprocess.run([str(LAUNCHER)], env={"PATH": f"{stub.parent}:{os.environ['PATH']}"},
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "arenas=2", out


@pytest.mark.parametrize("mode", ["adaptive", "batch"])
def test_a_loki_that_is_down_does_not_hold_invokes_to_their_timeout(
    fake_lambda: FakeLambda, mode: str
) -> None:
    import socket

    srv = socket.socket()  # accepts, never answers
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        # GIVEN Loki hanging, a 64 KiB buffer (high water 32 KiB) and invokes with a 60 s timeout
        proc = start_extension(fake_lambda.runtime_api, {
            "LOKI_URL": f"http://127.0.0.1:{srv.getsockname()[1]}/loki/api/v1/push", "LOKI_FLUSH": mode,
            "LOKI_MAX_BUFFER_BYTES": "65536"})
        assert fake_lambda.wait(lambda f: f.next_calls >= 1)
        # WHEN invokes come with their lines (and runtimeDone) while nothing can be pushed
        for n in range(1, 4):
            fake_lambda.events.put({"eventType": "INVOKE", "requestId": f"r{n}",
                                    "deadlineMs": int((time.time() + 60) * 1000)})
            lines = [fn(f"{n} {i:04d} " + "x" * 200 + "\n") for i in range(150)]
            fake_lambda.deliver([platform("start", {"requestId": f"r{n}"}), *lines, _done(f"r{n}")])
            # THEN each one's next comes long before that timeout (a bounded try, not 60 s of retries)
            assert fake_lambda.wait(lambda f, n=n: f.next_calls >= n + 1, timeout=15)
        fake_lambda.shutdown(deadline_s=1.0)
        proc.communicate(timeout=10)
    finally:
        srv.close()
