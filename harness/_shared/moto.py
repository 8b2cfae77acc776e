"""moto in server mode as a subprocess on 127.0.0.1 and a free port: the local AWS for the
demo (S3, DynamoDB) and the e2e tests (Secrets Manager, SSM)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from .ports import free_port

REGION = "us-east-1"
#: moto accepts any credentials; these never leave loopback.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
#: moto imports every service's backend on start: ~3-8 s on a loaded 2-core machine.
START_TIMEOUT_S = 30.0
#: How often to ask whether it answers yet (it gives no readiness signal of its own).
_POLL_S = 0.05


class MotoServer:
    """``moto_server`` on loopback. ``start()``/``stop()`` or a context manager.

    Its output goes to ``log_path`` (or a temporary file); a start that fails quotes its tail.
    """

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        exe = Path(sys.executable).parent / "moto_server"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        self._log = open(self._log_path, "w+b") if self._log_path else tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            [*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Tests may name any region; moto refuses unknown ones without this.
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _output_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        proc = self._proc
        assert proc is not None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"moto_server exited with {proc.returncode} before it was ready: {self._output_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1.0):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(_POLL_S)  # poll interval: the loop checks the real condition
        raise RuntimeError(
            f"moto_server did not answer on {self.url} within {START_TIMEOUT_S:.0f} s: {self._output_tail()}"
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def function_env(self) -> dict[str, str]:
        """What a function needs to reach this server through an AWS SDK (SDK-wide endpoint override)."""
        return {
            **CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.url,
        }

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
