"""The real extension process against in-test fakes of the Extensions/Telemetry APIs and Loki."""

from __future__ import annotations

import subprocess

from conftest import LAUNCHER, start_extension
from ext_fakes import FakeLambda, FakeLoki, fn, platform


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
    proc = start_extension(fake_lambda.runtime_api, {"LOKI_URL": loki.url, "DISPATCH_MIN_BATCH_SIZE": "3"})
    assert fake_lambda.wait(lambda f: f.next_calls >= 1)
    # THEN it registered for INVOKE+SHUTDOWN under its file name and subscribed before next
    assert fake_lambda.registered["name"] == "loki-telemetry-extension"
    sub = fake_lambda.subscription
    assert sub is not None and sub["_id"] == "ext-id-1"
    assert sub["schemaVersion"] == "2022-12-13"
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
    fake_lambda.deliver([fn("never shipped\n")])
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
