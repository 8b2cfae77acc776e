"""Local stand-ins for the sample's AWS resources: moto in server mode on loopback.

The bucket and table are created from the synthesized template's own resource
properties (key schema, billing mode), under local names the demo chooses, and every
``Ref`` in the function's environment is resolved to those names.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3

REGION = "us-east-1"
#: moto accepts any credentials; these never leave loopback.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """``moto_server`` as a subprocess on 127.0.0.1 and a free port. Context manager."""

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        exe = Path(sys.executable).parent / "moto_server"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        log = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [*cmd, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log, stderr=log
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        # Poll until the server answers, with a deadline: there is no readiness signal.
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1.0):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)  # poll interval, not synchronisation: the loop checks the real condition
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    def function_env(self) -> dict[str, str]:
        """What a function needs to reach this server through boto3 (SDK-wide endpoint override)."""
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


@dataclass(frozen=True)
class LocalResources:
    """Template logical id -> the local (moto) name it stands for."""

    names: Mapping[str, str]

    def resolve(self, value: Any) -> str:
        """Resolve an environment value from the template: a literal or a ``Ref`` to a created resource."""
        if isinstance(value, (str, int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.names:
            return self.names[value["Ref"]]
        raise ValueError(f"cannot resolve {value!r} locally: only literals and Refs to {sorted(self.names)}")

    def resolve_env(self, variables: Mapping[str, Any]) -> dict[str, str]:
        return {name: self.resolve(value) for name, value in variables.items()}


def create_resources(
    server: MotoServer, resources: Mapping[str, Mapping[str, Any]], local_names: Mapping[str, str]
) -> LocalResources:
    """Create each template resource in ``local_names`` (logical id -> local name) in moto."""
    for logical_id, name in local_names.items():
        res = resources[logical_id]
        kind, props = res["Type"], res.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            server.client("s3").create_bucket(Bucket=name)
        elif kind == "AWS::DynamoDB::Table":
            server.client("dynamodb").create_table(
                TableName=name,
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PROVISIONED"),
                **(
                    {"ProvisionedThroughput": props["ProvisionedThroughput"]}
                    if "ProvisionedThroughput" in props
                    else {}
                ),
            )
        else:
            raise ValueError(f"{logical_id}: no local stand-in for {kind}")
    return LocalResources(names=dict(local_names))


def ensure_no_proxy_for_loopback() -> None:
    """boto3 and urllib honour proxy settings; loopback must never go through one."""
    for var in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(var, "")
        if "127.0.0.1" not in current:
            os.environ[var] = ",".join(p for p in (current, "127.0.0.1", "localhost") if p)
