"""The sample's Python function: records every object put under ``python/`` in DynamoDB.

It prints DynamoDB's response metadata and logs through ``logging``, so every invoke
writes both plain ``print`` lines and ``logging`` records for the extension to ship.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from typing import Any

import boto3

logger = logging.getLogger("sample")
logger.setLevel(logging.INFO)

# Created once per execution environment (at init), reused by every invoke.
_table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    records = event.get("Records", [])
    logger.info("received %d S3 record(s)", len(records))
    written = 0
    for record in records:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        # S3 URL-encodes keys in notifications (spaces arrive as '+').
        key = urllib.parse.unquote_plus(s3["object"]["key"])
        response = _table.put_item(
            Item={
                "key": key,
                "bucket": bucket,
                "size": int(s3["object"].get("size", 0)),
                "eventTime": record.get("eventTime", ""),
                "writer": "python",
            }
        )
        # DynamoDB's response metadata: request id, status, retries.
        meta = response["ResponseMetadata"]
        summary = {k: meta.get(k) for k in ("RequestId", "HTTPStatusCode", "RetryAttempts")}
        print(f"put_item {key}: {json.dumps(summary, sort_keys=True)}")
        logger.info("stored s3://%s/%s in %s", bucket, key, _table.name)
        written += 1
    return {"written": written}
