"""secrets: SigV4 against AWS's published test-suite vectors, and the GetSecretValue /
GetParameter calls against an in-test endpoint (moto's server is used in tests/e2e)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from loki_telemetry_extension import secrets

SUITE = {
    "access_key": "AKIDEXAMPLE",
    "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "region": "us-east-1",
    "service": "service",
    "amz_date": "20150830T123600Z",
    "session_token": None,
}
PREFIX = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature="
)


@pytest.mark.parametrize(
    ("method", "path", "query", "signature"),
    [
        # get-vanilla, get-vanilla-query-order-key-case, post-vanilla, get-utf8 (AWS SigV4 test suite)
        ("GET", "/", {}, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "GET",
            "/",
            {"Param2": "value2", "Param1": "value1"},
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        ("POST", "/", {}, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("GET", "/\u1234", {}, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ],
)
def test_sigv4_matches_aws_test_suite(method: str, path: str, query: dict[str, str], signature: str) -> None:
    out = secrets.sign_v4(
        method=method, host="example.amazonaws.com", path=path, query=query, headers={}, body=b"", **SUITE
    )
    assert out["Authorization"] == PREFIX + signature
    assert out["X-Amz-Date"] == "20150830T123600Z"


def test_session_token_is_sent_and_signed() -> None:
    out = secrets.sign_v4(
        method="POST",
        host="h",
        path="/",
        query={},
        headers={},
        body=b"",
        **{**SUITE, "session_token": "TOKEN"},
    )
    assert out["X-Amz-Security-Token"] == "TOKEN"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in out["Authorization"]


class FakeAWS:
    """Answers GetSecretValue / GetParameter and re-verifies each request's signature."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.seen: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                target = self.headers["X-Amz-Target"]
                req = json.loads(body)
                auth = self.headers["Authorization"]
                service = auth.split("Credential=")[1].split("/")[3]
                region = auth.split("Credential=")[1].split("/")[2]
                expected = secrets.sign_v4(
                    method="POST",
                    host=self.headers["Host"],
                    path=self.path,
                    query={},
                    headers={"Content-Type": self.headers["Content-Type"], "X-Amz-Target": target},
                    body=body,
                    region=region,
                    service=service,
                    access_key="AKID",
                    secret_key="SECRET",
                    session_token=self.headers.get("X-Amz-Security-Token"),
                    amz_date=self.headers["X-Amz-Date"],
                )
                outer.seen.append(
                    {
                        "target": target,
                        "req": req,
                        "signed_ok": expected["Authorization"] == auth,
                        "service": service,
                        "region": region,
                    }
                )
                key = req.get("SecretId") or req.get("Name")
                payload: dict[str, Any]
                if key not in outer.values:
                    status, payload = 400, {"__type": "ResourceNotFoundException", "message": "nope"}
                elif target == "secretsmanager.GetSecretValue":
                    status, payload = 200, {"ARN": key, "SecretString": outer.values[key]}
                else:
                    status, payload = 200, {"Parameter": {"Name": key, "Value": outer.values[key]}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class S(ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()


@pytest.fixture
def aws() -> Iterator[FakeAWS]:
    f = FakeAWS()
    yield f
    f.server.shutdown()
    f.server.server_close()


SM_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:loki-AbCdEf"
SSM_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/loki/token"


def env(url: str, **extra: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_ENDPOINT_URL": url, **extra}


def test_fetch_secrets_manager_value_signed(aws: FakeAWS) -> None:
    aws.values[SM_ARN] = "user:pa:ss"
    assert secrets.fetch_secret_string(env(aws.url, AWS_SESSION_TOKEN="tok"), SM_ARN) == "user:pa:ss"
    seen = aws.seen[0]
    assert seen["target"] == "secretsmanager.GetSecretValue" and seen["req"] == {"SecretId": SM_ARN}
    assert seen["signed_ok"] and seen["service"] == "secretsmanager" and seen["region"] == "eu-west-1"


def test_fetch_ssm_securestring_with_decryption(aws: FakeAWS) -> None:
    aws.values[SSM_ARN] = "glc_token"
    assert secrets.fetch_secret_string(env(aws.url), SSM_ARN) == "glc_token"
    seen = aws.seen[0]
    assert seen["target"] == "AmazonSSM.GetParameter"
    assert seen["req"] == {"Name": SSM_ARN, "WithDecryption": True} and seen["signed_ok"]


def test_service_specific_endpoint_wins(aws: FakeAWS) -> None:
    aws.values[SSM_ARN] = "v"
    e = env("http://127.0.0.1:1", AWS_ENDPOINT_URL_SSM=aws.url)
    assert secrets.fetch_secret_string(e, SSM_ARN) == "v"


def test_missing_secret_error_names_arn_and_code_only(aws: FakeAWS) -> None:
    with pytest.raises(secrets.SecretError, match=r"HTTP 400 ResourceNotFoundException") as info:
        secrets.fetch_secret_string(env(aws.url), SM_ARN)
    assert SM_ARN in str(info.value)


def test_unreachable_endpoint_is_a_secret_error() -> None:
    with pytest.raises(secrets.SecretError, match="cannot reach"):
        secrets.fetch_secret_string(env("http://127.0.0.1:1"), SM_ARN)


def test_missing_credentials() -> None:
    with pytest.raises(secrets.SecretError, match="AWS_ACCESS_KEY_ID"):
        secrets.fetch_secret_string({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, SM_ARN)


def test_default_endpoints() -> None:
    assert secrets._endpoint({}, "ssm", "eu-west-1", "aws") == "https://ssm.eu-west-1.amazonaws.com"
    assert (
        secrets._endpoint({}, "secretsmanager", "cn-north-1", "aws-cn")
        == "https://secretsmanager.cn-north-1.amazonaws.com.cn"
    )


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("user:pass", "Basic dXNlcjpwYXNz"),
        ('{"username": "user", "password": "pass"}', "Basic dXNlcjpwYXNz"),
        ("123456:glc_ey:J=", "Basic MTIzNDU2OmdsY19leTpKPQ=="),
    ],
)
def test_basic_auth_formats(value: str, header: str) -> None:
    assert secrets.basic_auth_header(value) == header


@pytest.mark.parametrize("bad", ["nocolon", '{"username": "u"}', '{"user": 1, "password": "p"}'])
def test_bad_basic_auth_values(bad: str) -> None:
    with pytest.raises(secrets.SecretError) as info:
        secrets.basic_auth_header(bad)
    assert bad not in str(info.value)  # never echo a secret value


@pytest.mark.parametrize(("value", "header"), [("tok", "Bearer tok"), (' {"token": "t2"} ', "Bearer t2")])
def test_bearer_formats(value: str, header: str) -> None:
    assert secrets.bearer_header(value) == header


@pytest.mark.parametrize("bad", ["", "a\nb", '{"nope": 1}'])
def test_bad_bearer_values(bad: str) -> None:
    with pytest.raises(secrets.SecretError):
        secrets.bearer_header(bad)
