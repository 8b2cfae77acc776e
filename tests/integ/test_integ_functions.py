"""The sample's TypeScript and Go functions, built by the sample app's own bundlers, run in the
emulator against a recording DynamoDB endpoint.

They carry their own DynamoDB client (Signature Version 4 over Node's and Go's standard
libraries), and moto accepts any signature, so the demo alone cannot tell a wrong one: here
each signature is recomputed by botocore, the AWS SDK for Python, from the request as sent.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from demo import s3_events
from harness.lambda_emulator import LambdaEmulator
from sample_app.bundling import EsbuildBundler, GoBuild
from sample_app.stack import FUNCTIONS_DIR

pytestmark = pytest.mark.slow

REGION = "eu-central-1"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example")
TABLE = "objects-table"
KEY = "uploads/a file+x.txt"  # a space and a literal '+': S3 sends "uploads/a+file%2Bx.txt"
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/dynamodb/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class _Recorder(BaseHTTPRequestHandler):
    requests: list[Recorded]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        type(self).requests.append(Recorded(self.path, headers, body))
        answer = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", "REQUEST-ID-1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def dynamodb() -> Iterator[tuple[str, list[Recorded]]]:
    recorded: list[Recorded] = []
    handler = type("Recorder", (_Recorder,), {"requests": recorded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _build(language: str, out: Path) -> tuple[str, str]:
    """Build the function as synth does; returns (runtime, handler)."""
    if language == "TypeScript":
        assert EsbuildBundler(FUNCTIONS_DIR / "typescript" / "index.ts").try_bundle(str(out))
        return "nodejs22.x", "index.handler"
    assert GoBuild(FUNCTIONS_DIR / "go", "amd64").try_bundle(str(out))
    return "provided.al2023", "bootstrap"


def _botocore_signature(request: Recorded, signed: list[str]) -> tuple[str, str]:
    """(signed headers, signature) that botocore computes for the same request and time."""
    headers = {name: request.headers[name] for name in signed if name != "host"}
    aws_request = AWSRequest(
        method="POST",
        url=f"http://{request.headers['host']}{request.path}",
        data=request.body,
        headers=headers,
    )
    aws_request.context["timestamp"] = request.headers["x-amz-date"]
    auth = SigV4Auth(CREDENTIALS, "dynamodb", REGION)
    canonical = auth.canonical_request(aws_request)
    signature = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
    return auth.signed_headers(auth.headers_to_sign(aws_request)), signature


@pytest.mark.parametrize("language", ["TypeScript", "Go"])
def test_put_item_is_signed_as_the_aws_sdk_signs_it(
    language: str, tmp_path: Path, dynamodb: tuple[str, list[Recorded]]
) -> None:
    # GIVEN the function built as synth builds it, pointed at a recording endpoint
    endpoint, recorded = dynamodb
    runtime, handler = _build(language, tmp_path)
    env = {
        "TABLE_NAME": TABLE,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS.access_key,
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS.secret_key,
        "AWS_SESSION_TOKEN": CREDENTIALS.token,
    }
    event = s3_events.object_created_put(
        bucket="uploads-bucket", key=KEY, size=5, put_response={}, region=REGION, sequencer=1
    )
    # WHEN it handles one S3 notification
    with LambdaEmulator(
        handler=handler, code_dir=tmp_path, env=env, runtime=runtime, region=REGION, function_name="fn"
    ) as lam:
        result = lam.invoke(event)
        output = "\n".join(lam.runtime_output())
    # THEN it wrote the decoded key into the table, with one PutItem
    assert result.error is None, output
    assert result.payload == {"written": 1}
    (request,) = recorded
    assert request.path == "/"
    assert request.headers["x-amz-target"] == "DynamoDB_20120810.PutItem"
    assert request.headers["content-type"] == "application/x-amz-json-1.0"
    doc = json.loads(request.body)
    assert doc["TableName"] == TABLE
    assert doc["Item"]["key"] == {"S": KEY}
    assert doc["Item"]["bucket"] == {"S": "uploads-bucket"}
    assert doc["Item"]["size"] == {"N": "5"}
    assert doc["Item"]["writer"] == {"S": language.lower()}
    # AND signed it exactly as botocore would: same scope, same signed headers, same signature
    match = AUTHORIZATION.match(request.headers["authorization"])
    assert match is not None, request.headers["authorization"]
    assert match["key"] == CREDENTIALS.access_key
    assert match["region"] == REGION
    assert match["day"] == request.headers["x-amz-date"][:8]
    assert request.headers["x-amz-security-token"] == CREDENTIALS.token
    signed = match["signed"].split(";")
    assert {"host", "x-amz-date", "x-amz-target", "x-amz-security-token", "content-type"} <= set(signed)
    assert _botocore_signature(request, signed) == (match["signed"], match["signature"])
    assert urllib.parse.quote(KEY) not in request.body.decode()  # stored decoded, not as S3 sent it


@pytest.mark.parametrize("language", ["TypeScript", "Go"])
def test_a_build_gives_the_same_bytes_from_any_checkout_path(language: str, tmp_path: Path) -> None:
    # GIVEN the function's sources in two checkouts at different paths
    sources = FUNCTIONS_DIR / ("typescript" if language == "TypeScript" else "go")
    outputs = []
    for checkout in ("one", "another/deeper"):
        copy = tmp_path / checkout / sources.name
        shutil.copytree(sources, copy)
        out = tmp_path / f"out-{len(outputs)}"
        out.mkdir()
        # WHEN each is built as synth builds it
        if language == "TypeScript":
            assert EsbuildBundler(copy / "index.ts").try_bundle(str(out))
        else:
            assert GoBuild(copy, "amd64").try_bundle(str(out))
        outputs.append({p.name: p.read_bytes() for p in out.iterdir()})
    # THEN both builds are byte for byte the same (no build path, no build id in them)
    assert outputs[0] == outputs[1]
