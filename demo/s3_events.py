"""S3 event notifications as S3 would send them to Lambda, routed as the template says.

moto can record bucket notifications but cannot invoke a Lambda function without Docker,
so the demo builds each notification itself, in S3's documented event format (version
2.1), from the real ``PutObject`` response moto gave, and routes it by the notification
configuration in the synthesized template (CDK's ``Custom::S3BucketNotifications``).
"""

from __future__ import annotations

import fnmatch
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

NOTIFICATIONS = "Custom::S3BucketNotifications"


@dataclass(frozen=True)
class Route:
    """One ``LambdaFunctionConfigurations`` entry: these events of this bucket go to this function."""

    bucket_id: str
    function_id: str
    events: tuple[str, ...]  # e.g. ("s3:ObjectCreated:Put",)
    prefix: str = ""
    suffix: str = ""

    def matches(self, event_name: str, key: str) -> bool:
        return (
            any(fnmatch.fnmatchcase(event_name, pattern) for pattern in self.events)
            and key.startswith(self.prefix)
            and key.endswith(self.suffix)
        )


def routes(resources: Mapping[str, Mapping[str, Any]]) -> list[Route]:
    """Every bucket → function route in the template's notification resources."""
    found: list[Route] = []
    for res in resources.values():
        if res["Type"] != NOTIFICATIONS:
            continue
        props = res["Properties"]
        bucket_id = props["BucketName"]["Ref"]
        for conf in props.get("NotificationConfiguration", {}).get("LambdaFunctionConfigurations", []):
            arn = conf["LambdaFunctionArn"]
            function_id = arn["Fn::GetAtt"][0] if isinstance(arn, dict) and "Fn::GetAtt" in arn else str(arn)
            rules = conf.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            by_name = {r["Name"].lower(): r["Value"] for r in rules}
            found.append(
                Route(
                    bucket_id=bucket_id,
                    function_id=function_id,
                    events=tuple(conf["Events"]),
                    prefix=by_name.get("prefix", ""),
                    suffix=by_name.get("suffix", ""),
                )
            )
    return found


def targets(all_routes: Sequence[Route], bucket_id: str, event_name: str, key: str) -> list[str]:
    """Logical ids of the functions S3 would invoke for this event."""
    return [r.function_id for r in all_routes if r.bucket_id == bucket_id and r.matches(event_name, key)]


def object_created_put(
    *,
    bucket: str,
    key: str,
    size: int,
    put_response: Mapping[str, Any],
    region: str,
    sequencer: int,
    when: datetime | None = None,
) -> dict[str, Any]:
    """The notification S3 sends for a ``PutObject`` (one record), from the call's real response."""
    meta = put_response.get("ResponseMetadata", {})
    headers = meta.get("HTTPHeaders", {})
    moment = when or datetime.now(timezone.utc)
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:LOCALDEMO"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": str(meta.get("RequestId", "")),
            "x-amz-id-2": str(meta.get("HostId", headers.get("x-amz-id-2", ""))),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "LocalDemoNotification",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "LOCALDEMO"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                # S3 URL-encodes keys in notifications (a space becomes '+').
                "key": urllib.parse.quote_plus(key, safe="/"),
                "size": size,
                "eTag": str(put_response.get("ETag", "")).strip('"'),
                "sequencer": f"{sequencer:016X}",
            },
        },
    }
    if put_response.get("VersionId"):
        record["s3"]["object"]["versionId"] = put_response["VersionId"]
    return {"Records": [record]}
