"""The demo's building blocks: counting through Loki's query API, S3 events, local names, the schema shim."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo import loki_query, s3_events
from demo.local_aws import LocalResources
from demo.loki_query import LokiQuery, base_url, label_key
from demo.run import DemoResult, FunctionResult
from harness.loki_receiver import LokiReceiver
from integ.run_integ_app import lower_schema_version
from sample_app.stack import FUNCTIONS


@pytest.fixture(scope="module")
def receiver() -> Iterator[LokiReceiver]:
    with LokiReceiver() as rx:
        yield rx


def _push(url: str, labels: dict[str, str], values: list[list[object]]) -> None:
    body = json.dumps({"streams": [{"stream": labels, "values": values}]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def test_query_pages_through_more_entries_than_one_answer_holds(
    receiver: LokiReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 23 entries, several sharing a timestamp across page boundaries, and pages of 5
    now = time.time_ns()
    labels = {"function": "paging", "source": "lambda"}
    values: list[list[object]] = [[str(now + (i // 3) * 1000), f"line {i}"] for i in range(23)]
    _push(receiver.url, labels, values)
    monkeypatch.setattr(loki_query, "PAGE_LIMIT", 5)
    # WHEN counted through the query API
    found = LokiQuery(receiver.url).query_range('{function="paging"}', now - 10**9, now + 10**9)
    # THEN every entry is counted exactly once
    assert found.count() == 23
    assert sorted(line for _, line in found.streams[label_key(labels)]) == sorted(
        f"line {i}" for i in range(23)
    )


def test_query_groups_by_stream_labels_not_structured_metadata(receiver: LokiReceiver) -> None:
    now = time.time_ns()
    labels = {"function": "metadata", "source": "lambda"}
    _push(
        receiver.url,
        labels,
        [[str(now), "a", {"request_id": "r1"}], [str(now + 1), "b", {"request_id": "r2"}]],
    )
    found = LokiQuery(receiver.url).query_range('{function="metadata"}', now - 10**9, now + 10**9)
    assert list(found.streams) == [label_key(labels)]
    assert found.count() == 2


def test_wait_for_returns_at_the_deadline_with_what_is_there(receiver: LokiReceiver) -> None:
    query = LokiQuery(receiver.url)
    started = time.monotonic()
    found = query.wait_for('{function="never"}', 0, time.time_ns(), lambda r: r.count() > 0, timeout_s=0.6)
    assert found.count() == 0
    assert 0.6 <= time.monotonic() - started < 10


def test_base_url_strips_the_push_path() -> None:
    assert base_url("https://logs.example/loki/api/v1/push") == "https://logs.example"
    assert base_url("http://127.0.0.1:3100/loki/api/v1/push") == "http://127.0.0.1:3100"


def test_s3_notification_matches_s3s_format() -> None:
    put_response = {
        "ETag": '"5d41402abc4b2a76b9719d911017c592"',
        "ResponseMetadata": {"RequestId": "REQ1", "HostId": "HOST1", "HTTPHeaders": {}},
    }
    event = s3_events.object_created_put(
        bucket="b", key="dir/a file+x.txt", size=5, put_response=put_response, region="us-east-1", sequencer=7
    )
    (record,) = event["Records"]
    assert record["eventVersion"] == "2.1"
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"] == {
        "name": "b",
        "ownerIdentity": {"principalId": "LOCALDEMO"},
        "arn": "arn:aws:s3:::b",
    }
    obj = record["s3"]["object"]
    # S3 URL-encodes keys: a space becomes '+', a literal '+' becomes %2B
    assert obj["key"] == "dir/a+file%2Bx.txt"
    assert urllib.parse.unquote_plus(obj["key"]) == "dir/a file+x.txt"
    assert obj["eTag"] == "5d41402abc4b2a76b9719d911017c592"
    assert obj["size"] == 5
    assert record["responseElements"] == {"x-amz-request-id": "REQ1", "x-amz-id-2": "HOST1"}
    assert record["eventTime"].endswith("Z")


def test_routes_honour_prefix_and_suffix_filters() -> None:
    resources = {
        "N": {
            "Type": s3_events.NOTIFICATIONS,
            "Properties": {
                "BucketName": {"Ref": "B"},
                "NotificationConfiguration": {
                    "LambdaFunctionConfigurations": [
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "LambdaFunctionArn": {"Fn::GetAtt": ["F", "Arn"]},
                            "Filter": {
                                "Key": {
                                    "FilterRules": [
                                        {"Name": "prefix", "Value": "in/"},
                                        {"Name": "suffix", "Value": ".csv"},
                                    ]
                                }
                            },
                        }
                    ]
                },
            },
        }
    }
    routes = s3_events.routes(resources)
    assert s3_events.targets(routes, "B", "s3:ObjectCreated:Put", "in/x.csv") == ["F"]
    assert s3_events.targets(routes, "B", "s3:ObjectCreated:Put", "out/x.csv") == []
    assert s3_events.targets(routes, "B", "s3:ObjectCreated:Put", "in/x.txt") == []
    assert s3_events.targets(routes, "Other", "s3:ObjectCreated:Put", "in/x.csv") == []


def test_local_resources_resolve_refs_and_refuse_what_they_cannot() -> None:
    local = LocalResources(names={"Table1": "loki-sample-objects"})
    assert local.resolve_env({"TABLE_NAME": {"Ref": "Table1"}, "N": 3, "FLAG": True}) == {
        "TABLE_NAME": "loki-sample-objects",
        "N": "3",
        "FLAG": "true",
    }
    with pytest.raises(ValueError, match="cannot resolve"):
        local.resolve({"Fn::GetAtt": ["Table1", "Arn"]})
    with pytest.raises(ValueError, match="cannot resolve"):
        local.resolve({"Ref": "Unknown"})


def test_schema_shim_lowers_only_newer_version_stamps(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps({"version": "55.0.0", "minimumCliVersion": "2.1148.0"})
    )
    (tmp_path / "integ.json").write_text(json.dumps({"version": "52.0.0"}))
    (tmp_path / "S.assets.json").write_text(json.dumps({"version": "55.0.0", "files": {}}))
    (tmp_path / "S.template.json").write_text(json.dumps({"version": "55.0.0"}))
    changed = lower_schema_version(tmp_path, 53)
    assert changed == ["S.assets.json: 55.0.0 -> 53.0.0", "manifest.json: 55.0.0 -> 53.0.0"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"version": "53.0.0"}
    assert json.loads((tmp_path / "integ.json").read_text()) == {"version": "52.0.0"}
    assert json.loads((tmp_path / "S.template.json").read_text()) == {"version": "55.0.0"}


def _fn(construct_id: str, *, emitted: int = 9, stored: int = 9, items: int = 3) -> FunctionResult:
    return FunctionResult(
        construct_id=construct_id,
        runtime="r",
        instrumented=True,
        uploads=3,
        items_in_table=items,
        emitted=emitted,
        stored=stored,
    )


def test_function_result_is_ok_only_with_every_line_and_every_item() -> None:
    assert _fn("Go").ok
    assert _fn("Go").summary_line() == "Go: delivered 9/9 log lines (r)"
    missing = _fn("Go", stored=8)
    assert not missing.ok
    assert missing.lost == 1
    assert not _fn("Go", items=2).ok
    assert not _fn("Go", emitted=0, stored=0).ok
    errored = _fn("Go")
    errored.invoke_errors.append("go/x: ERROR")
    assert not errored.ok
    skipped = FunctionResult(construct_id="Go", runtime="provided.al2023", instrumented=False)
    assert skipped.summary_line().endswith(" - not instrumented")


def test_demo_result_needs_every_function_ok() -> None:
    every = [_fn(spec.construct_id) for spec in FUNCTIONS]
    result = DemoResult(loki_url="http://x/loki/api/v1/push", functions=every)
    assert result.ok
    assert result.summary_line() == "delivered 27/27 log lines to Loki at http://x/loki/api/v1/push"
    one_short = DemoResult(loki_url="u", functions=[*every[:-1], _fn(FUNCTIONS[-1].construct_id, stored=8)])
    assert not one_short.ok
    assert one_short.lost == 1
    assert not DemoResult(loki_url="u", functions=every[:-1]).ok
