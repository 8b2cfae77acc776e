"""The sample app's synthesized template: wiring, least privilege, Loki instrumentation, cdk-nag.

One app (the real ``integ.app.build``) is synthesized per module; each test reads it.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template
from loki_telemetry_extension import envvars

from integ import app as sample_app
from integ import integ_s3_dynamodb, s3_events
from integ.loki_settings import DEFAULT_LOKI_URL, LokiSettings
from integ.sample_stack import ASSET_EXCLUDES, INGEST_CODE_DIR, SampleStack
from loki_telemetry_construct import WarningIds

LOKI = "http://10.1.2.3:3100/loki/api/v1/push"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleStack, dict[str, Any]]:
    context = {
        "loki_url": LOKI,
        "loki_batch_size": "25",
        # What the CDK CLI sets: records each resource's construct path in the template.
        "aws:cdk:enable-path-metadata": True,
    }
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")), context=context)
    stack = sample_app.build(app)
    app.synth()  # cdk-nag runs here: an unacknowledged finding raises
    return stack, Template.from_stack(stack).to_json()


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}


def _by_path(template: dict[str, Any], path_part: str) -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in template["Resources"].items() if path_part in v["Metadata"]["aws:cdk:path"]]
    assert len(found) == 1, [k for k, _ in found]
    return found[0]


def test_ingest_function_gets_the_layer_and_the_loki_environment(
    synthesized: tuple[SampleStack, Any],
) -> None:
    _, template = synthesized
    _, ingest = _by_path(template, "/Ingest/Resource")
    layer_id, layer = next(
        (k, v) for k, v in template["Resources"].items() if v["Type"] == "AWS::Lambda::LayerVersion"
    )
    props = ingest["Properties"]
    assert props["Layers"] == [{"Ref": layer_id}]
    env = props["Environment"]["Variables"]
    assert env[envvars.LOKI_URL] == LOKI
    assert env[envvars.DISPATCH_MIN_BATCH_SIZE] == "25"
    assert env[envvars.LOKI_LABELS] == '{"app":"loki-sample"}'
    assert env["TABLE_NAME"] == {"Ref": _by_path(template, "/Objects/Resource")[0]}
    assert props["Runtime"] == "python3.13"
    assert "python3.13" in layer["Properties"]["CompatibleRuntimes"]


def test_node_function_is_skipped_with_the_non_python_warning(synthesized: tuple[SampleStack, Any]) -> None:
    stack, template = synthesized
    _, audit = _by_path(template, "/Audit/Resource")
    assert "Layers" not in audit["Properties"]
    assert "Environment" not in audit["Properties"]
    warnings = Annotations.from_stack(stack).find_warning(
        "/LokiSampleApp/Audit", Match.string_like_regexp(f".*\\[ack: {WarningIds.NON_PYTHON_RUNTIME}\\]")
    )
    assert len(warnings) == 1


def test_only_the_ingest_function_is_instrumented(synthesized: tuple[SampleStack, Any]) -> None:
    _, template = synthesized
    with_layers = [
        v["Metadata"]["aws:cdk:path"] for v in _functions(template).values() if "Layers" in v["Properties"]
    ]
    assert with_layers == ["LokiSampleApp/Ingest/Resource"]


def test_put_notifications_go_to_ingest_and_removals_to_audit(synthesized: tuple[SampleStack, Any]) -> None:
    _, template = synthesized
    ingest_id, _ = _by_path(template, "/Ingest/Resource")
    audit_id, _ = _by_path(template, "/Audit/Resource")
    bucket_id, _ = _by_path(template, "/Uploads/Resource")
    routes = s3_events.routes(template["Resources"])
    assert s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Put", "a/b.txt") == [ingest_id]
    assert s3_events.targets(routes, bucket_id, "s3:ObjectRemoved:Delete", "a/b.txt") == [audit_id]
    assert s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Copy", "a/b.txt") == []


def test_ingest_role_may_only_put_items_into_its_table_and_write_its_logs(
    synthesized: tuple[SampleStack, Any],
) -> None:
    _, template = synthesized
    _, ingest = _by_path(template, "/Ingest/Resource")
    role_id = ingest["Properties"]["Role"]["Fn::GetAtt"][0]
    table_id, _ = _by_path(template, "/Objects/Resource")
    logs_id, _ = _by_path(template, "/IngestLogs/Resource")
    role = template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    policies = [
        v["Properties"]["PolicyDocument"]["Statement"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in v["Properties"]["Roles"]
    ]
    statements = [s for doc in policies for s in doc]
    assert statements == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [logs_id, "Arn"]},
        },
        {"Action": "dynamodb:PutItem", "Effect": "Allow", "Resource": {"Fn::GetAtt": [table_id, "Arn"]}},
    ]


def test_bucket_and_table_are_removed_with_the_stack(synthesized: tuple[SampleStack, Any]) -> None:
    _, template = synthesized
    for part in ("/Uploads/Resource", "/Objects/Resource"):
        _, res = _by_path(template, part)
        assert res["DeletionPolicy"] == "Delete"


def test_cdk_nag_fails_synth_without_the_acknowledgements(tmp_path: Path) -> None:
    # GIVEN the sample stack checked by cdk-nag but with no acknowledged finding
    app = App(outdir=str(tmp_path))
    SampleStack(app, "Unacknowledged")
    sample_app.nag.check(app)
    # THEN synthesis fails: the acknowledgements in integ/nag.py are what make it pass
    with pytest.raises(Exception, match="ValidationFailed") as failure:
        app.synth()
    for rule in ("AwsSolutions-S1", "AwsSolutions-L1", "AwsSolutions-IAM4"):
        assert rule in str(failure.value)


def test_settings_prefer_context_then_environment_then_default() -> None:
    app = App(context={"loki_ip": "10.0.0.9"})
    scope = Stack(app, "S")
    assert LokiSettings.resolve(scope, {}).loki_ip == "10.0.0.9"
    assert LokiSettings.resolve(scope, {}).loki_url is None
    bare = Stack(App(), "S")
    assert LokiSettings.resolve(
        bare, {envvars.LOKI_URL: "https://loki.example/loki/api/v1/push"}
    ).loki_url == ("https://loki.example/loki/api/v1/push")
    assert LokiSettings.resolve(bare, {}).loki_url == DEFAULT_LOKI_URL
    assert LokiSettings.resolve(bare, {envvars.LOKI_SHIP_BEFORE_FREEZE: "true"}).ship_before_freeze is True


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("loki_labels", "{not json", "loki_labels must be a JSON object"),
        ("loki_labels", '["a"]', "loki_labels must be a JSON object"),
        ("loki_batch_size", "many", "loki_batch_size must be an integer"),
        ("loki_ship_before_freeze", "maybe", "loki_ship_before_freeze must be true or false"),
    ],
)
def test_bad_context_values_fail_with_the_option_name(key: str, value: str, message: str) -> None:
    scope = Stack(App(context={key: value}), "S")
    with pytest.raises(ValueError, match=message):
        LokiSettings.resolve(scope, {})


def test_function_asset_hash_ignores_python_caches(tmp_path: Path) -> None:
    # GIVEN the function source, once clean and once with the caches a local run leaves behind
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    shutil.copytree(INGEST_CODE_DIR, clean, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(clean, dirty)
    (dirty / "__pycache__").mkdir()
    (dirty / "__pycache__" / "handler.cpython-313.pyc").write_bytes(b"\x00cache")
    (dirty / "stray.pyc").write_bytes(b"\x00")

    def asset_hash(path: Path) -> str:
        stack = Stack(App(), "S")
        lambda_.Function(
            stack,
            "F",
            runtime=lambda_.Runtime.PYTHON_3_13,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(path), exclude=ASSET_EXCLUDES),
        )
        code = Template.from_stack(stack).to_json()["Resources"]
        return str(
            next(v for v in code.values() if v["Type"] == "AWS::Lambda::Function")["Properties"]["Code"]
        )

    # THEN both stage the same asset
    assert asset_hash(clean) == asset_hash(dirty)


def _assertion_resources(app: App) -> dict[str, dict[str, Any]]:
    integ_s3_dynamodb.build(app)
    (stack,) = [c for c in app.node.find_all() if Stack.is_stack(c) and c.node.id == "DeployAssert"]
    resources: dict[str, dict[str, Any]] = Template.from_stack(stack).to_json()["Resources"]
    return resources


def test_integ_test_waits_for_the_item_and_queries_loki_only_when_asked(tmp_path: Path) -> None:
    plain = _assertion_resources(App(outdir=str(tmp_path / "plain")))
    kinds = sorted(v["Type"] for v in plain.values() if v["Type"].startswith("Custom::DeployAssert"))
    assert kinds == ["Custom::DeployAssert@SdkCallDynamoDBgetItem", "Custom::DeployAssert@SdkCallS3putObject"]

    query_url = "https://loki.example/loki/api/v1/query_range"
    with_loki = _assertion_resources(
        App(outdir=str(tmp_path / "loki"), context={"loki_query_url": query_url})
    )
    (http,) = [v for v in with_loki.values() if v["Type"].startswith("Custom::DeployAssert@HttpCall")]
    url = json.dumps(http["Properties"])
    assert query_url in url
    assert "%7Bfunction%3D%22" in url  # {function="<the ingest function's name, resolved at deploy>"}
    assert urllib.parse.quote(f'"}} |= "{integ_s3_dynamodb.PROBE_KEY}"') in url
