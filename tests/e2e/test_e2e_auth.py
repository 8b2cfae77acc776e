"""Tenant header, basic auth and bearer token, with the credentials fetched at init
from Secrets Manager / SSM SecureString served by moto's server mode (the extension
signs its own SigV4 requests: no botocore). Secrets never appear in any output."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from harness.loki_receiver import LokiReceiver
from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    assert_clean_shutdown,
    assert_same_lines,
    aws_env,
    batch_budget,
    boto_client,
    function_entries,
    invoke_burst,
    invoke_ok,
    loki_env,
)

USER, PASSWORD = "123456", "glc_s3cr3t-P@ss:with:colons"
TOKEN = "tok_e2e.bearer-Zm9vYmFy"


def _traffic(emulator: Any, prefix: str) -> list[str]:
    budget = batch_budget()
    expected: list[str] = []
    for i in range(5):
        expected += invoke_burst(emulator, budget, f"{prefix}{i}", 20, 30)
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    budget.check()
    return expected


def _assert_never_leaked(emulator: Any, receiver: Any, *secrets: str) -> None:
    outputs = "\n".join(emulator.extension_stderr()) + "\n".join(e.line for e in receiver.entries())
    for secret in secrets:
        assert secret not in outputs, "a secret was logged"


def test_tenant_header_is_sent(make_emulator: MakeEmulator) -> None:
    with LokiReceiver(require_tenant=True) as loki:
        emulator = make_emulator(
            loki_env(loki, flush="batch", **{envvars.LOKI_TENANT_ID: "team-a"}), function_name="e2e-tenant"
        )
        expected = _traffic(emulator, "tn")
        entries = function_entries(loki, "e2e-tenant")
        assert_same_lines([e.line for e in entries], expected, "tenant")
        assert {e.tenant for e in entries} == {"team-a"}
        assert all(r.status != 401 for r in loki.requests)


def test_missing_tenant_is_rejected_by_receiver(make_emulator: MakeEmulator) -> None:
    """Control for the test above: without LOKI_TENANT_ID a tenant-enforcing Loki
    answers 401, so the header really is what makes the difference."""
    with LokiReceiver(require_tenant=True) as loki:
        emulator = make_emulator(loki_env(loki), function_name="e2e-no-tenant")
        invoke_ok(emulator, [{"print": ["x"]}])
        emulator.shutdown()
        assert function_entries(loki, "e2e-no-tenant") == []
        assert any(r.status == 401 for r in loki.requests)


@pytest.mark.parametrize(
    "secret_value",
    [f"{USER}:{PASSWORD}", json.dumps({"username": USER, "password": PASSWORD})],
    ids=["user-colon-password", "json"],
)
def test_basic_auth_from_secrets_manager(
    make_emulator: MakeEmulator, moto_url: str, secret_value: str
) -> None:
    sm = boto_client("secretsmanager", moto_url)
    arn = sm.create_secret(Name=f"loki-basic-{uuid.uuid4().hex}", SecretString=secret_value)["ARN"]
    with LokiReceiver(basic_auth=(USER, PASSWORD)) as loki:
        env = {
            **aws_env(moto_url),
            **loki_env(loki, flush="batch", **{envvars.LOKI_BASIC_AUTH_SECRET_ARN: arn}),
        }
        emulator = make_emulator(env, function_name="e2e-basic")
        expected = _traffic(emulator, "ba")
        assert_same_lines([e.line for e in function_entries(loki, "e2e-basic")], expected, "basic auth")
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        pushes = [r for r in loki.requests if r.method == "POST"]
        assert pushes and all(r.authorization == want for r in pushes)
        _assert_never_leaked(emulator, loki, PASSWORD)


def test_bearer_token_from_ssm_securestring(make_emulator: MakeEmulator, moto_url: str) -> None:
    ssm = boto_client("ssm", moto_url)
    name = f"/e2e/loki/token-{uuid.uuid4().hex}"  # one moto server per session: a name per test run
    ssm.put_parameter(Name=name, Value=TOKEN, Type="SecureString")
    arn = ssm.get_parameter(Name=name)["Parameter"]["ARN"]
    with LokiReceiver(bearer_token=TOKEN) as loki:
        env = {
            **aws_env(moto_url),
            **loki_env(loki, flush="batch", **{envvars.LOKI_BEARER_TOKEN_SECRET_ARN: arn}),
        }
        emulator = make_emulator(env, function_name="e2e-bearer")
        expected = _traffic(emulator, "br")
        assert_same_lines([e.line for e in function_entries(loki, "e2e-bearer")], expected, "bearer")
        pushes = [r for r in loki.requests if r.method == "POST"]
        assert pushes and all(r.authorization == f"Bearer {TOKEN}" for r in pushes)
        _assert_never_leaked(emulator, loki, TOKEN)


def test_bearer_token_from_secrets_manager_with_tenant(make_emulator: MakeEmulator, moto_url: str) -> None:
    sm = boto_client("secretsmanager", moto_url)
    arn = sm.create_secret(Name=f"loki-bearer-{uuid.uuid4().hex}", SecretString=TOKEN)["ARN"]
    with LokiReceiver(bearer_token=TOKEN, require_tenant=True) as loki:
        env = {
            **aws_env(moto_url),
            **loki_env(
                loki,
                flush="batch",
                **{envvars.LOKI_BEARER_TOKEN_SECRET_ARN: arn, envvars.LOKI_TENANT_ID: "t-9"},
            ),
        }
        emulator = make_emulator(env, function_name="e2e-bearer-sm")
        expected = _traffic(emulator, "bs")
        entries = function_entries(loki, "e2e-bearer-sm")
        assert_same_lines([e.line for e in entries], expected, "bearer + tenant")
        assert {e.tenant for e in entries} == {"t-9"}
