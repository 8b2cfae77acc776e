"""Integration test of the sample app, for ``integ-runner --language python --directory integ``.

Deployed for real (``--update-on-failed``/``--force`` with AWS credentials), it puts one
object into the bucket and waits until the ``ingest`` function has written its key to
DynamoDB. When a Loki query URL is given (``-c loki_query_url=...`` is not available through
integ-runner, so: ``LOKI_QUERY_URL=https://<loki>/loki/api/v1/query_range``), it also waits
until Loki holds the function's line about that key. Without credentials, integ-runner only
compares a fresh synthesis with the committed ``integ_s3_dynamodb.py.snapshot/`` (what CI does).
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

if __package__ in (None, ""):
    # integ-runner runs `python3 integ_s3_dynamodb.py` from integ/: make `integ` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aws_cdk import App, Duration, Fn
from aws_cdk.integ_tests_alpha import ExpectedResult, IntegTest, Match

from integ import nag
from integ.loki_settings import LokiSettings
from integ.sample_stack import SampleStack

TEST_NAME = "LokiSampleIntegTest"
STACK_NAME = "LokiSampleIntegStack"
#: The object the test uploads; its key is what the function logs and stores.
PROBE_KEY = "integ-probe/hello.txt"
WAIT_TOTAL = Duration.minutes(3)
WAIT_INTERVAL = Duration.seconds(10)


def build(app: App) -> IntegTest:
    stack = SampleStack(app, STACK_NAME)
    settings = LokiSettings.resolve(stack)
    # Ship each invoke's lines before the environment freezes, so Loki can be queried
    # right after the single test upload instead of at the environment's shutdown.
    settings.apply(stack, ship_before_freeze=True)
    nag.acknowledge_findings(stack)
    nag.check(app)

    # No update workflow: it would deploy the committed snapshot first, so the snapshot would
    # have to carry every asset (the extension, a 6 MB assertion-provider bundle). Asset
    # contents are not diffed either: the snapshot pins the infrastructure, not the code.
    integ = IntegTest(app, TEST_NAME, test_cases=[stack], diff_assets=False, stack_update_workflow=False)
    put = integ.assertions.aws_api_call(
        "S3", "putObject", {"Bucket": stack.bucket.bucket_name, "Key": PROBE_KEY, "Body": "hello from integ"}
    )
    stored = (
        integ.assertions.aws_api_call(
            "DynamoDB",
            "getItem",
            {"TableName": stack.table.table_name, "Key": {"key": {"S": PROBE_KEY}}, "ConsistentRead": True},
        )
        .expect(
            ExpectedResult.object_like(
                {"Item": {"key": {"S": PROBE_KEY}, "bucket": {"S": stack.bucket.bucket_name}}}
            )
        )
        .wait_for_assertions(total_timeout=WAIT_TOTAL, interval=WAIT_INTERVAL)
    )
    put.next(stored)

    if settings.query_url:
        # LogQL: the ingest function's stream, lines mentioning the probe key.
        query = Fn.join(
            "",
            [
                settings.query_url,
                "?limit=100&query=",
                urllib.parse.quote('{function="'),
                stack.ingest.function_name,  # [A-Za-z0-9_-]: nothing to escape
                urllib.parse.quote(f'"}} |= "{PROBE_KEY}"'),
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
        stored.next(shipped.wait_for_assertions(total_timeout=WAIT_TOTAL, interval=WAIT_INTERVAL))
    return integ


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
