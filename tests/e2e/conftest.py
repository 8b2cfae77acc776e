"""Fixtures for the end-to-end tests: the real extension (from ``extension/``, the
layer root) run by the local Lambda emulator against the local Loki receiver, and
moto in server mode for secrets. Every server binds 127.0.0.1 and is torn down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness.lambda_emulator import LambdaEmulator
from harness.loki_receiver import LokiReceiver
from tests.e2e.support import FUNCTIONS_DIR, HANDLER, LAYER_DIR, wait_until

MakeEmulator = Callable[..., LambdaEmulator]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything in this folder is an end-to-end test."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def receiver() -> Iterator[LokiReceiver]:
    """A fresh Loki 3.x-like receiver per test: faults and counts never leak between tests."""
    with LokiReceiver() as r:
        yield r


@pytest.fixture
def make_emulator() -> Iterator[MakeEmulator]:
    """Start emulators running app.handler with the extension layer; all are shut
    down (and their processes reaped) at teardown, also when the test fails."""
    with ExitStack() as stack:

        def make(env: dict[str, str], **kwargs: Any) -> LambdaEmulator:
            kwargs.setdefault("timeout_s", 10.0)
            emulator = LambdaEmulator(
                handler=HANDLER,
                code_dir=FUNCTIONS_DIR,
                layers=(LAYER_DIR,),
                env=env,
                **kwargs,
            )
            return stack.enter_context(emulator)

        yield make


# --- moto in server mode --------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server mode on 127.0.0.1 (a subprocess), for Secrets Manager and SSM."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    try:
        exited = threading.Event()
        ready = wait_until(lambda: proc.poll() is not None or _moto_ready(url), 30.0, exited)
        if proc.poll() is not None or not ready:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"moto_server did not start on {url}: {err[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
