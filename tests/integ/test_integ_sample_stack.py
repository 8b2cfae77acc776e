"""The sample app's synthesized template: wiring, least privilege, Loki instrumentation, cdk-nag.

One app (the real ``sample_app.app.build``) is synthesized per module; each test reads it.
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

from demo import s3_events
from integ import integ_s3_dynamodb
from sample_app import app as sample_app
from sample_app import nag
from sample_app.loki_settings import DEFAULT_LOKI_URL, LokiSettings
from sample_app.stack import ASSET_EXCLUDES, FUNCTIONS, FUNCTIONS_DIR, SampleFunction, SampleStack

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
    return stack, dict(Template.from_stack(stack).to_json())


def _by_path(template: dict[str, Any], path_part: str) -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in template["Resources"].items() if path_part in v["Metadata"]["aws:cdk:path"]]
    assert len(found) == 1, [k for k, _ in found]
    return found[0]


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.construct_id)
def test_each_function_has_its_runtime_architecture_and_bundled_code(
    synthesized: tuple[SampleStack, dict[str, Any]], spec: SampleFunction, tmp_path: Path
) -> None:
    _, template = synthesized
    _, fn = _by_path(template, f"/{spec.construct_id}/Resource")
    props = fn["Properties"]
    assert props["Runtime"] == spec.runtime.name
    assert props["Architectures"] == [spec.architecture.name]
    assert props["Handler"] == spec.handler
    assert props["Environment"]["Variables"]["TABLE_NAME"] == {
        "Ref": _by_path(template, "/Objects/Resource")[0]
    }


def _staged_code(stack: SampleStack, template: dict[str, Any], construct_id: str) -> Path:
    """The asset directory CDK staged for a function's code (``asset.<hash>`` beside the template)."""
    _, fn = _by_path(template, f"/{construct_id}/Resource")
    asset_hash = fn["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    return Path(stack.node.root.outdir) / f"asset.{asset_hash}"  # type: ignore[attr-defined]


def test_typescript_is_bundled_by_esbuild_into_the_file_its_handler_names(
    synthesized: tuple[SampleStack, dict[str, Any]],
) -> None:
    stack, template = synthesized
    staged = _staged_code(stack, template, "TypeScript")
    # Handler index.handler: Node.js loads index.js; one self-contained CommonJS file, no sources.
    assert sorted(p.name for p in staged.iterdir()) == ["index.js"]
    bundle = (staged / "index.js").read_text()
    assert "DynamoDB_20120810.PutItem" in bundle
    assert "module.exports" in bundle
    assert "interface S3Event" not in bundle  # types stripped: it is JavaScript now


def test_go_is_built_into_a_static_bootstrap_for_the_templates_architecture(
    synthesized: tuple[SampleStack, dict[str, Any]],
) -> None:
    stack, template = synthesized
    staged = _staged_code(stack, template, "Go")
    # provided.al2023 executes ./bootstrap.
    assert sorted(p.name for p in staged.iterdir()) == ["bootstrap"]
    bootstrap = staged / "bootstrap"
    head = bootstrap.read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    assert int.from_bytes(head[18:20], "little") == 62  # EM_X86_64, as the template's x86_64 says
    assert bootstrap.stat().st_mode & 0o111


#: The build of the extension each function gets, by the layer's compatible architectures: the
#: Python build (one layer, both) for Python 3.12; the native build for its architecture otherwise.
EXPECTED_LAYER_ARCHITECTURES = {"TypeScript": ["x86_64"], "Python": ["x86_64", "arm64"], "Go": ["x86_64"]}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.construct_id)
def test_every_function_gets_the_layer_of_its_kind_and_the_loki_environment(
    synthesized: tuple[SampleStack, Any], spec: SampleFunction
) -> None:
    stack, template = synthesized
    _, fn = _by_path(template, f"/{spec.construct_id}/Resource")
    props = fn["Properties"]
    (layer,) = props["Layers"]
    layer_props = template["Resources"][layer["Ref"]]["Properties"]
    assert layer_props["CompatibleArchitectures"] == EXPECTED_LAYER_ARCHITECTURES[spec.construct_id]
    build = "Python build" if spec.runtime.name.startswith("python") else "native build"
    assert build in layer_props["Description"]
    env = props["Environment"]["Variables"]
    assert env[envvars.LOKI_URL] == LOKI
    assert env[envvars.DISPATCH_MIN_BATCH_SIZE] == "25"
    assert env[envvars.LOKI_LABELS] == '{"app":"loki-sample"}'
    # Instrumented, so no skip warning of the aspect's for it.
    assert (
        Annotations.from_stack(stack).find_warning(f"/LokiSampleApp/{spec.construct_id}", Match.any_value())
        == []
    )


def test_the_typescript_and_go_functions_share_one_native_layer(synthesized: tuple[SampleStack, Any]) -> None:
    _, template = synthesized
    layers = {
        cid: _by_path(template, f"/{cid}/Resource")[1]["Properties"]["Layers"] for cid in ("TypeScript", "Go")
    }
    assert layers["TypeScript"] == layers["Go"]


def test_each_prefix_goes_to_its_own_function(synthesized: tuple[SampleStack, Any]) -> None:
    _, template = synthesized
    bucket_id, _ = _by_path(template, "/Uploads/Resource")
    routes = s3_events.routes(template["Resources"])
    for spec in FUNCTIONS:
        fn_id, _ = _by_path(template, f"/{spec.construct_id}/Resource")
        assert s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Put", f"{spec.prefix}a/b.txt") == [
            fn_id
        ]
        assert s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Copy", f"{spec.prefix}a/b.txt") == []
    assert s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Put", "elsewhere/b.txt") == []


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda spec: spec.construct_id)
def test_each_role_may_only_put_items_into_the_table_and_write_its_own_logs(
    synthesized: tuple[SampleStack, Any], spec: SampleFunction
) -> None:
    _, template = synthesized
    _, fn = _by_path(template, f"/{spec.construct_id}/Resource")
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    table_id, _ = _by_path(template, "/Objects/Resource")
    logs_id, _ = _by_path(template, f"/{spec.construct_id}Logs/Resource")
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
    nag.check(app)
    # THEN synthesis fails: the acknowledgements in sample_app/nag.py are what make it pass
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
    shutil.copytree(FUNCTIONS_DIR / "python", clean, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(clean, dirty)
    (dirty / "__pycache__").mkdir()
    (dirty / "__pycache__" / "handler.cpython-313.pyc").write_bytes(b"\x00cache")
    (dirty / "stray.pyc").write_bytes(b"\x00")

    def asset_hash(path: Path) -> str:
        stack = Stack(App(), "S")
        lambda_.Function(
            stack,
            "F",
            runtime=lambda_.Runtime.PYTHON_3_12,
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
    (stack,) = [c for c in app.node.find_all() if isinstance(c, Stack) and c.node.id == "DeployAssert"]
    resources: dict[str, dict[str, Any]] = Template.from_stack(stack).to_json()["Resources"]
    return resources


def test_integ_test_waits_for_each_functions_item_and_queries_loki_only_when_asked(tmp_path: Path) -> None:
    plain = _assertion_resources(App(outdir=str(tmp_path / "plain")))
    kinds = sorted(v["Type"] for v in plain.values() if v["Type"].startswith("Custom::DeployAssert"))
    assert kinds == sorted(
        ["Custom::DeployAssert@SdkCallDynamoDBgetItem", "Custom::DeployAssert@SdkCallS3putObject"]
        * len(FUNCTIONS)
    )
    probes = json.dumps(plain)
    for spec in FUNCTIONS:
        assert integ_s3_dynamodb.probe_key(spec.prefix) in probes

    query_url = "https://loki.example/loki/api/v1/query_range"
    with_loki = _assertion_resources(
        App(outdir=str(tmp_path / "loki"), context={"loki_query_url": query_url})
    )
    http = [
        json.dumps(v["Properties"])
        for v in with_loki.values()
        if v["Type"].startswith("Custom::DeployAssert@HttpCall")
    ]
    assert len(http) == len(FUNCTIONS)
    for url in http:
        assert query_url in url
        assert "%7Bfunction%3D%22" in url  # {function="<the function's name, resolved at deploy>"}
    for spec in FUNCTIONS:
        probe = urllib.parse.quote(f'"}} |= "{integ_s3_dynamodb.probe_key(spec.prefix)}"')
        assert sum(probe in url for url in http) == 1
