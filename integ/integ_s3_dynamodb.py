"""Integration test of the sample app, for ``integ-runner --language python --directory integ``.

The stack under test is the sample app's (``sample_app/stack.py``). Deployed for real
(``--update-on-failed``/``--force`` with AWS credentials), it puts one object per function
into the bucket (under each function's key prefix) and waits until each function (TypeScript,
Python, Go) has written its key to DynamoDB. When a Loki query URL is given
(``-c loki_query_url=...`` is not available through integ-runner, so:
``LOKI_QUERY_URL=https://<loki>/loki/api/v1/query_range``), it also waits until Loki holds
each function's line about its key. Without credentials, integ-runner only compares a fresh
synthesis with the committed ``integ_s3_dynamodb.py.snapshot/`` (what CI does).
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

if __package__ in (None, ""):
    # integ-runner runs `python3 integ_s3_dynamodb.py` from integ/: make `sample_app` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aws_cdk import App, Duration, Fn
from aws_cdk.integ_tests_alpha import ExpectedResult, IApiCall, IntegTest, Match

from sample_app import nag
from sample_app.loki_settings import LokiSettings
from sample_app.stack import FUNCTIONS, SampleStack

TEST_NAME = "LokiSampleIntegTest"
STACK_NAME = "LokiSampleIntegStack"
#: The object the test uploads for each function, under its prefix; its key is what the function
#: logs and stores.
PROBE_NAME = "integ-probe/hello.txt"


def probe_key(prefix: str) -> str:
    return f"{prefix}{PROBE_NAME}"


WAIT_TOTAL = Duration.minutes(3)
WAIT_INTERVAL = Duration.seconds(10)


def build(app: App) -> IntegTest:
    stack = SampleStack(app, STACK_NAME)
    settings = LokiSettings.resolve(stack)
    # Ship each invoke's lines before the environment freezes, so Loki can be queried
    # right after each test upload instead of at the environment's shutdown.
    settings.apply(stack, ship_before_freeze=True)
    nag.acknowledge_findings(stack)
    nag.check(app)

    # No update workflow: it would deploy the committed snapshot first, so the snapshot would
    # have to carry every asset (the extension, a 6 MB assertion-provider bundle). Asset
    # contents are not diffed either: the snapshot pins the infrastructure, not the code.
    integ = IntegTest(app, TEST_NAME, test_cases=[stack], diff_assets=False, stack_update_workflow=False)
    for spec in FUNCTIONS:
        _probe(
            integ, stack, spec.prefix, stack.functions[spec.construct_id].function_name, settings.query_url
        )
    return integ


def _probe(
    integ: IntegTest, stack: SampleStack, prefix: str, function_name: str, query_url: str | None
) -> None:
    """Put one object under ``prefix``; wait for its item in DynamoDB, then (if asked) its line in Loki."""
    key = probe_key(prefix)
    put = integ.assertions.aws_api_call(
        "S3", "putObject", {"Bucket": stack.bucket.bucket_name, "Key": key, "Body": "hello from integ"}
    )
    stored = (
        integ.assertions.aws_api_call(
            "DynamoDB",
            "getItem",
            {"TableName": stack.table.table_name, "Key": {"key": {"S": key}}, "ConsistentRead": True},
        )
        .expect(
            ExpectedResult.object_like(
                {"Item": {"key": {"S": key}, "bucket": {"S": stack.bucket.bucket_name}}}
            )
        )
        .wait_for_assertions(total_timeout=WAIT_TOTAL, interval=WAIT_INTERVAL)
    )
    put.next(stored)
    if query_url:
        stored.next(_loki_line(integ, query_url, function_name, key))


def _loki_line(integ: IntegTest, query_url: str, function_name: str, key: str) -> IApiCall:
    # LogQL: the function's stream, lines mentioning the probe key.
    query = Fn.join(
        "",
        [
            query_url,
            "?limit=100&query=",
            urllib.parse.quote('{function="'),
            function_name,  # [A-Za-z0-9_-]: nothing to escape
            urllib.parse.quote(f'"}} |= "{key}"'),
        ],
    )
    shipped = integ.assertions.http_api_call(query).expect(
        ExpectedResult.object_like(
            {
                "status": 200,
                "body": {
                    "status": "success",
                    "data": {
                        "result": Match.array_with(
                            [Match.object_like({"stream": Match.object_like({"source": "lambda"})})]
                        )
                    },
                },
            }
        )
    )
    return shipped.wait_for_assertions(total_timeout=WAIT_TOTAL, interval=WAIT_INTERVAL)


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
