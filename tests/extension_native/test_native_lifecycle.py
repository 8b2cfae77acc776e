"""The native binary as Lambda runs it, against the in-test fakes of the Extensions/Telemetry
APIs and Loki; arm64 runs under qemu-user."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ext_fakes import FakeLambda, FakeLoki, fn, platform


def _start(
    binary: Path, arch: str, runtime_api: str, env: dict[str, str], tmp_path: Path
) -> subprocess.Popen[str]:
    # Lambda starts /opt/extensions/<name>: the extension registers under its file name.
    exe = tmp_path / "extensions" / "my-loki-ext"
    exe.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, exe)
    cmd = [str(exe)]
    if arch == "arm64":
        qemu = shutil.which("qemu-aarch64-static")
        assert qemu, "qemu-aarch64-static is missing: run `make qemu`"
        cmd = [qemu, str(exe)]
    full = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": "unit-fn", **env}
    return subprocess.Popen(cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str], fake: FakeLambda) -> tuple[int, str]:
    fake.shutdown()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_registers_subscribes_ships_and_drains(arch: str, binaries: dict[str, Path], fake_lambda: FakeLambda,
                                               loki: FakeLoki, tmp_path: Path) -> None:
    proc = _start(binaries[arch], arch, fake_lambda.runtime_api,
                  {"LOKI_URL": loki.url, "LOKI_FLUSH": "batch", "DISPATCH_MIN_BATCH_SIZE": "3"}, tmp_path)
    assert fake_lambda.wait(lambda f: f.next_calls >= 1, timeout=30)
    assert fake_lambda.registered["name"] == "my-loki-ext"
    assert fake_lambda.registered["body"].replace(" ", "") == '{"events":["INVOKE","SHUTDOWN"]}'
    sub = fake_lambda.subscription
    assert sub is not None and sub["_id"] == "ext-id-1"
    assert sub["schemaVersion"] == "2025-01-29"
    assert sub["types"] == ["platform", "function"]
    assert sub["buffering"] == {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 100}
    assert sub["destination"]["URI"].startswith("http://sandbox.localdomain:")
    fake_lambda.invoke("req-1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2, timeout=30)
    start = platform("start", {"requestId": "req-1"})
    status = fake_lambda.deliver([start, fn("one\n"), fn("two\n"), fn("three\n")])
    assert status == 200
    # The batch size is reached: pushed before any SHUTDOWN.
    assert loki.wait_for(lambda lk: len(lk.stored()) >= 3, timeout=30)
    fake_lambda.deliver([fn("four\n")])
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    stored = loki.stored()
    assert [e[2] for e in stored] == ["one", "two", "three", "four"]
    assert stored[0][0] == {"source": "lambda", "function": "unit-fn"}
    assert stored[0][3] == {"request_id": "req-1"}
    assert loki.requests[0].headers.get("content-encoding") == "gzip"


def test_end_of_invoke_pushes_before_next(binaries: dict[str, Path], fake_lambda: FakeLambda, loki: FakeLoki,
                                          tmp_path: Path) -> None:
    proc = _start(binaries["x86_64"], "x86_64", fake_lambda.runtime_api,
                  {"LOKI_URL": loki.url, "LOKI_FLUSH": "end_of_invoke", "LOKI_FLUSH_INTERVAL_MS": "60000"},
                  tmp_path)
    assert fake_lambda.wait(lambda f: f.next_calls >= 1, timeout=30)
    assert fake_lambda.subscription is not None and fake_lambda.subscription["buffering"]["timeoutMs"] == 25
    fake_lambda.invoke("r1", timeout_s=10)
    assert fake_lambda.wait(lambda f: "INVOKE" in f.served, timeout=30)
    fake_lambda.deliver([platform("start", {"requestId": "r1"}), fn("a\n"), fn("b\n")])
    # Not before runtimeDone: the extension waits for it, then pushes, then calls next.
    assert fake_lambda.next_calls == 1
    fake_lambda.deliver([platform("runtimeDone", {"requestId": "r1", "status": "success"})])
    assert fake_lambda.wait(lambda f: f.next_calls >= 2, timeout=30)
    assert [e[2] for e in loki.stored()] == ["a", "b"]
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err


def test_high_water_mark_keeps_room_for_the_largest_recent_invoke(
    binaries: dict[str, Path], fake_lambda: FakeLambda, loki: FakeLoki, tmp_path: Path
) -> None:
    # The Python build's test of the same name, on the native build.
    proc = _start(binaries["x86_64"], "x86_64", fake_lambda.runtime_api, {
        "LOKI_URL": loki.url, "LOKI_FLUSH": "batch", "LOKI_MAX_BUFFER_BYTES": "262144",
        "LOKI_HIGH_WATER_PERCENT": "100", "DISPATCH_MIN_BATCH_SIZE": "10000",
        "LOKI_FLUSH_INTERVAL_MS": "60000"},
        tmp_path)
    assert fake_lambda.wait(lambda f: f.next_calls >= 1, timeout=30)
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2, timeout=30)
    lines = [f"{i:04d} " + "x" * 200 for i in range(560)]
    done = platform("runtimeDone", {"requestId": "r1", "status": "success"})
    fake_lambda.deliver([fn(x + "\n") for x in lines] + [done], until_queued=True)
    fake_lambda.invoke("r2")
    assert fake_lambda.wait(lambda f: f.next_calls >= 3, timeout=30)
    assert loki.requests, "nothing pushed before next although the room left was smaller than the last invoke"
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
    assert sorted(e[2] for e in loki.stored()) == lines


def test_no_endpoint_is_a_noop_until_shutdown(binaries: dict[str, Path], fake_lambda: FakeLambda,
                                               tmp_path: Path) -> None:
    proc = _start(binaries["x86_64"], "x86_64", fake_lambda.runtime_api, {}, tmp_path)
    assert fake_lambda.wait(lambda f: f.next_calls >= 1, timeout=30)
    assert fake_lambda.subscription is None
    fake_lambda.invoke("r1")
    assert fake_lambda.wait(lambda f: f.next_calls >= 2, timeout=30)
    code, err = _finish(proc, fake_lambda)
    assert code == 0
    assert err == ("[loki-telemetry-extension] no Loki endpoint: set LOKI_URL (full push URL) or LOKI_IP; "
                   "logs will not be shipped\n")


def test_managed_instances_register_shutdown_only(
    binaries: dict[str, Path], fake_lambda: FakeLambda, loki: FakeLoki, tmp_path: Path
) -> None:
    proc = _start(binaries["x86_64"], "x86_64", fake_lambda.runtime_api,
                  {"LOKI_URL": loki.url, "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
                   "LOKI_FLUSH_INTERVAL_MS": "50"}, tmp_path)
    assert fake_lambda.wait(lambda f: f.next_calls >= 1, timeout=30)
    assert fake_lambda.registered["body"].replace(" ", "") == '{"events":["SHUTDOWN"]}'
    fake_lambda.deliver([platform("start", {"requestId": "r1"}), fn("mi line\n")])
    # Flushed on time (no INVOKE ever comes), and no request id borrowed from platform.start.
    assert loki.wait_for(lambda lk: len(lk.stored()) >= 1, timeout=30)
    assert loki.stored()[0][2:] == ("mi line", None)
    code, err = _finish(proc, fake_lambda)
    assert code == 0, err
