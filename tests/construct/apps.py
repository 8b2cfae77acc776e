"""CDK apps the construct tests synthesize once per session (each synth costs seconds of jsii time).

``build_main`` is the representative app: every kind of function the aspect meets, with
every option set. ``build_scenarios`` holds one small stack per behaviour, each with its
own aspect, so one synth covers them all.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import (
    Annotations as CdkAnnotations,
)
from aws_cdk import (
    App,
    Aspects,
    CfnParameter,
    Duration,
    NestedStack,
    RemovalPolicy,
    Size,
    Stack,
    Stage,
    Token,
)
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Annotations, Match
from constructs import Construct, IConstruct

import loki_telemetry_construct.layer as layer_module
from loki_telemetry_construct import (
    LokiLogging,
    LokiTelemetryLayer,
    TelemetryBuffering,
    WarningIds,
    with_loki_logging,
)

ENV = {"account": "123456789012", "region": "eu-west-1"}
#: Managed Instances runtimes beyond the Python 3.13 and Node.js 24 functions: (key, runtime).
MANAGED_INSTANCES_OTHERS: tuple[tuple[str, lambda_.Runtime], ...] = (
    ("MiPython314", lambda_.Runtime.PYTHON_3_14),
    ("MiNode22", lambda_.Runtime.NODEJS_22_X),
    ("MiJava21", lambda_.Runtime.JAVA_21),
    ("MiJava25", lambda_.Runtime.JAVA_25),
    ("MiDotnet8", lambda_.Runtime.DOTNET_8),
    ("MiDotnet10", lambda_.Runtime.DOTNET_10),
    ("MiProvidedAl2023", lambda_.Runtime.PROVIDED_AL2023),
)
#: The ten-function stack: (key, runtime, architecture) -> expected build.
TEN_FUNCTIONS: tuple[tuple[str, lambda_.Runtime, str], ...] = (
    ("Python312", lambda_.Runtime.PYTHON_3_12, "x86_64"),
    ("Python313Arm", lambda_.Runtime.PYTHON_3_13, "arm64"),
    ("Python314", lambda_.Runtime.PYTHON_3_14, "x86_64"),
    ("Node22", lambda_.Runtime.NODEJS_22_X, "x86_64"),
    ("Node24Arm", lambda_.Runtime.NODEJS_24_X, "arm64"),
    ("Java21", lambda_.Runtime.JAVA_21, "x86_64"),
    ("Dotnet8Arm", lambda_.Runtime.DOTNET_8, "arm64"),
    ("Ruby33", lambda_.Runtime.RUBY_3_3, "x86_64"),
    ("ProvidedAl2023Arm", lambda_.Runtime.PROVIDED_AL2023, "arm64"),
    ("ProvidedAl2", lambda_.Runtime.PROVIDED_AL2, "x86_64"),
)
CODE = "def handler(event, context):\n    print('hello')\n"
LOKI_URL = "https://logs-prod-012.grafana.net/loki/api/v1/push"
LAYER_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:loki-telemetry:7"
NATIVE_X86_ARN = "arn:aws:lambda:eu-west-1:123456789012:layer:loki-telemetry-native-x86_64:4"


_STAND_IN: Path | None = None


def _stand_in_root() -> Path:
    """Layer trees shaped like the built ones (launcher 0755, one file per build/architecture).

    The construct tests check templates, not layer contents (tests/construct/test_construct_layer.py
    and tests/packaging do, on the real trees), so they run without Go and whatever the state of
    the checkout's build/layers.
    """
    global _STAND_IN
    if _STAND_IN is None:
        root = Path(tempfile.mkdtemp(prefix="loki-construct-layers-"))
        for tree, body in (
            ("python", b"#!/bin/sh\n# stand-in launcher\n"),
            ("native/x86_64", b"\x7fELF stand-in x86_64"),
            ("native/arm64", b"\x7fELF stand-in arm64"),
        ):
            launcher = root / tree / "extensions" / "loki-telemetry-extension"
            launcher.parent.mkdir(parents=True)
            launcher.write_bytes(body)
            os.chmod(launcher, 0o755)
        (root / "code").mkdir()
        (root / "code" / "bootstrap").write_text("function code stand-in\n")
        _STAND_IN = root
    return _STAND_IN


@contextlib.contextmanager
def stand_in_layers() -> Iterator[None]:
    """Within it, LokiTelemetryLayer stages the stand-in trees (staging happens at construction)."""
    real = layer_module.layer_tree

    def fake(build: str, architecture: lambda_.Architecture | None = None) -> Path:
        arch = (architecture or lambda_.Architecture.X86_64).name
        return _stand_in_root() / ("python" if build == "python" else f"native/{arch}")

    layer_module.layer_tree = fake  # type: ignore[assignment]
    try:
        yield
    finally:
        layer_module.layer_tree = real


def node_function(
    scope: Construct, id: str, runtime: lambda_.Runtime = lambda_.Runtime.NODEJS_22_X, **kwargs: object
) -> lambda_.Function:
    return lambda_.Function(
        scope,
        id,
        runtime=runtime,
        handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => 'ok';"),
        **kwargs,  # type: ignore[arg-type]
    )


def any_function(
    scope: Construct, id: str, runtime: lambda_.Runtime, arch: lambda_.Architecture | None = None
) -> lambda_.Function:
    """A function on ``runtime`` (inline code is fine for synthesis, whatever the runtime)."""
    return lambda_.Function(
        scope,
        id,
        runtime=runtime,
        handler="index.handler",
        # Inline code is refused for compiled runtimes (Java, .NET, provided.*): an asset works for all.
        code=lambda_.Code.from_asset(str(_stand_in_root() / "code")),
        architecture=arch,
    )


def py_function(
    scope: Construct,
    id: str,
    runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_12,
    **kwargs: object,
) -> lambda_.Function:
    return lambda_.Function(
        scope,
        id,
        runtime=runtime,
        handler="index.handler",
        code=lambda_.Code.from_inline(CODE),
        **kwargs,  # type: ignore[arg-type]
    )


class Workload(Construct):
    """Every kind of function the aspect meets, as a user's stack would hold them."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.py_x86 = py_function(self, "PyX86")
        self.py_arm = py_function(
            self, "PyArm", lambda_.Runtime.PYTHON_3_13, architecture=lambda_.Architecture.ARM_64
        )
        self.py310 = py_function(self, "Py310", lambda_.Runtime.PYTHON_3_10)
        self.py39 = py_function(self, "Py39", lambda_.Runtime.PYTHON_3_9)
        self.nodejs = lambda_.Function(
            self,
            "Node",
            runtime=lambda_.Runtime.NODEJS_22_X,
            handler="index.handler",
            code=lambda_.Code.from_inline("exports.handler = async () => 'ok';"),
        )
        repo = ecr.Repository.from_repository_name(self, "Repo", "my-image")
        self.image = lambda_.DockerImageFunction(
            self, "Image", code=lambda_.DockerImageCode.from_ecr(repo, tag_or_digest="v1")
        )
        self.singleton = lambda_.SingletonFunction(
            self,
            "Singleton",
            uuid="5f1b6a2e-2b0e-4c55-9a3c-8c1c0e7d2a11",
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler="index.handler",
            code=lambda_.Code.from_inline(CODE),
        )
        # S3 autoDeleteObjects and log retention add custom-resource provider functions.
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            auto_delete_objects=True,
            removal_policy=RemovalPolicy.DESTROY,
            enforce_ssl=True,
            server_access_logs_prefix="access/",
        )
        self.retained = py_function(self, "WithLogRetention", log_retention=logs.RetentionDays.ONE_WEEK)
        self.raw = lambda_.CfnFunction(
            self,
            "Raw",
            role="arn:aws:iam::123456789012:role/raw",
            runtime="python3.12",
            handler="index.handler",
            code=lambda_.CfnFunction.CodeProperty(zip_file=CODE),
        )
        self.excluded = py_function(self, "Excluded")
        self.legacy = py_function(self, "LegacyReport")
        nested = NestedStack(self, "Nested")
        self.nested_fn = py_function(nested, "NestedPy")


@dataclass
class MainApp:
    app: App
    stack: Stack
    workload: Workload
    secret: secretsmanager.Secret
    aspect: LokiLogging


def build_main(*, instrument: bool = True, synth: bool = True) -> MainApp:
    """The representative app, with every option set (or without the aspect: the baseline).

    ``synth=False`` leaves it unsynthesized, to add aspects first (then synthesize it within
    :func:`stand_in_layers`).
    """
    with stand_in_layers():
        built = _build_main(instrument)
        if synth:
            built.app.synth()  # the aspect creates the layers during synthesis
    return built


def _build_main(instrument: bool) -> MainApp:
    app = App(analytics_reporting=False)
    stack = Stack(app, "Main", env=ENV)
    workload = Workload(stack, "Workload")
    key = kms.Key(stack, "AuthKey", enable_key_rotation=True)
    secret = secretsmanager.Secret(stack, "LokiAuth", encryption_key=key)
    aspect = LokiLogging(
        loki_url=LOKI_URL,
        batch_size=500,
        flush_interval=Duration.seconds(2),
        ship_before_freeze=True,  # the older spelling of flush="end_of_invoke"
        dense_gap=Duration.millis(150),
        high_water_percent=60,
        telemetry_types=("function", "platform"),
        buffering=TelemetryBuffering(
            max_items=2000, max_bytes=Size.kibibytes(512), timeout=Duration.millis(250)
        ),
        labels={"env": "prod", "team": "payments"},
        tenant_id="team-a",
        basic_auth_secret=secret,
        max_buffer_bytes=Size.mebibytes(8),
        max_line_bytes=64_000,
        disable_cloudwatch_logs=True,
        exclude=[workload.excluded, lambda fn: fn.node.id.startswith("Legacy")],
    )
    if instrument:
        # App scope: reaches every stack and nested stack.
        Aspects.of(app).add(aspect)
    return MainApp(app, stack, workload, secret, aspect)


@dataclass
class Scenarios:
    """One stack per behaviour; names are the stacks' ids."""

    app: App
    stacks: dict[str, Stack] = field(default_factory=dict)
    fns: dict[str, IConstruct] = field(default_factory=dict)
    stage: Stage | None = None


def build_scenarios() -> Scenarios:
    with stand_in_layers():
        built = _build_scenarios()
        built.app.synth()  # the aspect creates the layers during synthesis
    return built


def _build_scenarios() -> Scenarios:
    app = App(analytics_reporting=False)
    s = Scenarios(app)

    def stack(name: str, scope: Construct = app) -> Stack:
        st = Stack(scope, name, env=ENV)
        s.stacks[name] = st
        return st

    # The shortest one-liner, defaults otherwise; both architectures.
    st = stack("Minimal")
    s.fns["min_x86"] = py_function(st, "PyX86")
    s.fns["min_arm"] = py_function(st, "PyArm", architecture=lambda_.Architecture.ARM_64)
    with_loki_logging(st, loki_ip="10.0.0.5", batch_size=10)

    # Scoped to one function: its sibling is untouched.
    st = stack("FunctionScope")
    only = py_function(st, "Only")
    s.fns["scope_only"] = only
    s.fns["scope_other"] = py_function(st, "Other")
    with_loki_logging(only, loki_ip="10.0.0.5")

    # Scoped to a SingletonFunction: the wrapped function lives at the stack root.
    st = stack("SingletonScope")
    single = lambda_.SingletonFunction(
        st,
        "Single",
        uuid="0b9d1c2e-1111-4e0e-9d5b-2b7f1f0a0c3d",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline(CODE),
    )
    # A second wrapper of the same uuid shares the function: it must get one layer, not two.
    lambda_.SingletonFunction(
        st,
        "SingleAgain",
        uuid="0b9d1c2e-1111-4e0e-9d5b-2b7f1f0a0c3d",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline(CODE),
    )
    with_loki_logging(single, loki_ip="10.0.0.5")

    # A bearer token in SSM.
    st = stack("BearerSsm")
    s.fns["bearer"] = py_function(st, "Fn")
    param = ssm.StringParameter.from_secure_string_parameter_attributes(
        st, "Token", parameter_name="/loki/token"
    )
    with_loki_logging(st, loki_url=LOKI_URL, bearer_token_secret=param)

    # A secret imported by name: its ARN is partial, Secrets Manager adds "-" + 6 characters.
    st = stack("PartialSecret")
    s.fns["partial"] = py_function(st, "Fn")
    by_name = secretsmanager.Secret.from_secret_name_v2(st, "Auth", "loki/basic-auth")
    with_loki_logging(st, loki_url=LOKI_URL, basic_auth_secret=by_name)

    # The user's own layer object (shared from another stack) and a layer ARN.
    layer_stack = stack("LayerHome")
    user_layer = LokiTelemetryLayer(layer_stack, "LokiLayer")
    st = stack("UserLayer")
    s.fns["user_layer"] = py_function(st, "Fn")
    with_loki_logging(st, loki_ip="10.0.0.5", layer=user_layer)
    st = stack("ArnLayer")
    s.fns["arn_a"] = py_function(st, "A")
    s.fns["arn_b"] = py_function(st, "B")
    with_loki_logging(st, loki_ip="10.0.0.5", layer=LAYER_ARN)

    # include: by construct (a scope) and by predicate; exclude wins.
    st = stack("Include")
    team = Construct(st, "TeamA")
    s.fns["inc_in_scope"] = py_function(team, "InScope")
    s.fns["inc_by_predicate"] = py_function(st, "Reporting")
    s.fns["inc_not_selected"] = py_function(st, "Elsewhere")
    s.fns["inc_but_excluded"] = py_function(team, "Skipped")
    with_loki_logging(
        st,
        loki_ip="10.0.0.5",
        include=[team, lambda fn: fn.node.id == "Reporting"],
        exclude=[s.fns["inc_but_excluded"]],
    )

    # Excluding a SingletonFunction wrapper excludes the function it wraps (which CDK puts
    # at the stack root, outside the wrapper), even with the aspect on the whole stack.
    st = stack("ExcludeSingleton")
    wrapper = lambda_.SingletonFunction(
        st,
        "Wrapper",
        uuid="7d3e2c1a-4b5f-4a6e-8c9d-0e1f2a3b4c5d",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline(CODE),
    )
    s.fns["excl_singleton"] = wrapper
    s.fns["excl_other"] = py_function(st, "Other")
    with_loki_logging(st, loki_ip="10.0.0.5", exclude=[wrapper])

    # An aspect on a SingletonFunction wrapper (not a scope of the function it wraps) and one
    # on the stack, with different settings: one layer, and a warning.
    st = stack("SingletonTwoAspects")
    wrapped = lambda_.SingletonFunction(
        st,
        "Wrapper",
        uuid="3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline(CODE),
    )
    with_loki_logging(wrapped, loki_ip="10.0.0.7")
    with_loki_logging(st, loki_ip="10.0.0.8")

    # A function that already uses Lambda's 5 layers.
    st = stack("LayerLimit")
    layers = [
        lambda_.LayerVersion.from_layer_version_arn(
            st, f"L{i}", f"arn:aws:lambda:eu-west-1:123456789012:layer:other{i}:1"
        )
        for i in range(5)
    ]
    s.fns["full"] = py_function(st, "Full", layers=layers)
    with_loki_logging(st, loki_ip="10.0.0.5")

    # Applied twice with the same settings, then a third time with different ones.
    st = stack("Twice")
    s.fns["twice"] = py_function(st, "Fn")
    with_loki_logging(st, loki_ip="10.0.0.5", batch_size=10)
    with_loki_logging(st, loki_ip="10.0.0.5", batch_size=10)
    st_conflict = stack("Conflict")
    s.fns["conflict"] = py_function(st_conflict, "Fn")
    with_loki_logging(st_conflict, loki_ip="10.0.0.5")
    with_loki_logging(st_conflict, loki_ip="10.0.0.6")

    # An imported, immutable role: the CloudWatch Deny cannot be added.
    st = stack("ImmutableRole")
    role = iam.Role.from_role_arn(st, "Role", "arn:aws:iam::123456789012:role/fixed", mutable=False)
    s.fns["immutable"] = py_function(st, "Fn", role=role)
    with_loki_logging(st, loki_ip="10.0.0.5", disable_cloudwatch_logs=True)

    # Deploy-time values (tokens) pass through unvalidated.
    st = stack("Tokens")
    url = CfnParameter(st, "LokiUrl", type="String")
    size = CfnParameter(st, "BatchSize", type="Number")
    s.fns["tokens"] = py_function(st, "Fn")
    with_loki_logging(st, loki_url=url.value_as_string, batch_size=Token.as_number(size.value_as_number))

    # Lambda@Edge (EdgeFunction in us-east-1 keeps the function in this stack).
    st = Stack(app, "Edge", env={"account": "123456789012", "region": "us-east-1"})
    s.stacks["Edge"] = st
    edge = cloudfront.experimental.EdgeFunction(
        st,
        "EdgeFn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline(CODE),
    )
    s.fns["edge"] = edge
    s.fns["edge_sibling"] = py_function(st, "Regular")
    # Lambda@Edge by hand with an imported role: undetectable, so CDK's remove_in_edge must
    # strip the environment (else synthesis fails) when the version is associated.
    by_hand = py_function(
        st, "EdgeByHand", role=iam.Role.from_role_arn(st, "EdgeRole", "arn:aws:iam::123456789012:role/edge")
    )
    s.fns["edge_by_hand"] = by_hand
    cloudfront.Distribution(
        st,
        "Dist",
        default_behavior=cloudfront.BehaviorOptions(
            origin=origins.HttpOrigin("example.com"),
            edge_lambdas=[
                cloudfront.EdgeLambda(
                    function_version=by_hand.current_version,
                    event_type=cloudfront.LambdaEdgeEventType.VIEWER_REQUEST,
                )
            ],
        ),
    )
    with_loki_logging(st, loki_ip="10.0.0.5")

    # Every skip warning acknowledged at the stack: none is reported.
    st = stack("Acknowledged")
    lambda_.Function(
        st,
        "Node",
        runtime=lambda_.Runtime.NODEJS_22_X,
        handler="index.handler",
        code=lambda_.Code.from_inline("exports.handler = async () => 'ok';"),
    )
    s3.Bucket(st, "Bucket", auto_delete_objects=True, removal_policy=RemovalPolicy.DESTROY)
    for warning_id in (WarningIds.NON_PYTHON_RUNTIME, WarningIds.CUSTOM_RESOURCE_PROVIDER):
        CdkAnnotations.of(st).acknowledge_warning(warning_id, "tested: acknowledged at stack scope")
    with_loki_logging(st, loki_ip="10.0.0.5")

    # The ten functions a platform team has side by side: every one gets the layer of its
    # kind and architecture, and the environment.
    st = stack("TenFunctions")
    arm = lambda_.Architecture.ARM_64
    for key, runtime, architecture in TEN_FUNCTIONS:
        s.fns[key] = any_function(st, key, runtime, arm if architecture == "arm64" else None)
    with_loki_logging(st, loki_ip="10.0.0.5")

    # extension="native": Python functions get the native build too.
    st = stack("NativeEverywhere")
    s.fns["native_py"] = py_function(st, "Py")
    s.fns["native_py_arm"] = py_function(st, "PyArm", architecture=arm)
    with_loki_logging(st, loki_ip="10.0.0.5", extension="native")

    # extension="python": only the Python build's runtimes; the rest are warned about.
    st = stack("PythonOnly")
    s.fns["po_py"] = py_function(st, "Py")
    s.fns["po_py314"] = py_function(st, "Py314", lambda_.Runtime.PYTHON_3_14)
    s.fns["po_node"] = node_function(st, "Node")
    with_loki_logging(st, loki_ip="10.0.0.5", extension="python")

    # Native layers of the user's own (published once per account): x86_64 given, arm64 not.
    st = stack("NativeLayers")
    s.fns["nl_x86"] = node_function(st, "NodeX86")
    s.fns["nl_arm"] = node_function(st, "NodeArm", architecture=arm)
    s.fns["nl_py"] = py_function(st, "Py")
    with_loki_logging(st, loki_ip="10.0.0.5", native_layers={"x86_64": NATIVE_X86_ARN})

    # Runtimes no layer can serve: retired (Amazon Linux 1) and unknown ones.
    st = stack("NoLayerFits")
    s.fns["retired_py37"] = any_function(st, "Py37", lambda_.Runtime.PYTHON_3_7)
    s.fns["retired_go"] = any_function(st, "Go1x", lambda_.Runtime.GO_1_X)
    s.fns["unknown"] = any_function(st, "Future", lambda_.Runtime("python3.99", lambda_.RuntimeFamily.PYTHON))
    s.fns["odd_arch"] = any_function(
        st, "OddArch", lambda_.Runtime.NODEJS_22_X, lambda_.Architecture.custom("riscv64")
    )
    with_loki_logging(st, loki_ip="10.0.0.5")

    # Lambda Managed Instances: functions on a capacity provider, Python and Node.js.
    st = stack("ManagedInstances")
    subnet = ec2.Subnet.from_subnet_attributes(
        st, "Subnet", subnet_id="subnet-0123456789abcdef0", availability_zone="eu-west-1a"
    )
    group = ec2.SecurityGroup.from_security_group_id(st, "Group", "sg-0123456789abcdef0")
    provider = lambda_.CapacityProvider(st, "Capacity", subnets=[subnet], security_groups=[group])
    s.fns["mi_py"] = py_function(st, "Py313", lambda_.Runtime.PYTHON_3_13)
    s.fns["mi_node"] = node_function(st, "Node24", lambda_.Runtime.NODEJS_24_X)
    # The other runtimes the mode runs, one each.
    for key, runtime in MANAGED_INSTANCES_OTHERS:
        s.fns[key] = any_function(st, key, runtime)
    for key in ("mi_py", "mi_node", *(k for k, _ in MANAGED_INSTANCES_OTHERS)):
        provider.add_function(s.fns[key])  # type: ignore[arg-type]
    with_loki_logging(st, loki_url=LOKI_URL)

    # Roles that can be changed get no immutableRole warning; roles that cannot, do.
    st = stack("Roles")
    s.fns["role_imported_mutable"] = py_function(
        st, "ImportedMutable", role=iam.Role.from_role_arn(st, "Mutable", "arn:aws:iam::123456789012:role/m")
    )
    own = iam.Role(st, "Own", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    s.fns["role_without_updates"] = py_function(st, "WithoutUpdates", role=own.without_policy_updates())
    s.fns["role_default"] = py_function(st, "Default")
    with_loki_logging(st, loki_url=LOKI_URL, disable_cloudwatch_logs=True)

    # A push URL with an unusual path (a proxy, or a typo) and one with the Promtail-era path.
    st = stack("OddPath")
    s.fns["odd_path"] = py_function(st, "Fn")
    with_loki_logging(st, loki_url="https://logs.example.com/loki")
    st = stack("PromPath")
    s.fns["prom_path"] = py_function(st, "Fn")
    with_loki_logging(st, loki_url="https://logs.example.com/api/prom/push")

    # A Stage as the scope: every stack inside it.
    stage = Stage(app, "Prod", env=ENV)
    s.stage = stage
    for name in ("StageA", "StageB"):
        st = stack(name, stage)
        s.fns[name] = py_function(st, "Fn")
    with_loki_logging(stage, loki_ip="10.0.0.5")
    return s


@dataclass
class Precedence:
    app: App
    stacks: dict[str, Stack] = field(default_factory=dict)
    fns: dict[str, IConstruct] = field(default_factory=dict)


def build_precedence() -> Precedence:
    """Aspects on nested scopes: App (10.0.0.1) > Stack "Inner" (10.0.0.2) > construct "Team" (10.0.0.3)."""
    with stand_in_layers():
        app = App(analytics_reporting=False)
        p = Precedence(app)
        inner = Stack(app, "Inner", env=ENV)
        outer_only = Stack(app, "OuterOnly", env=ENV)
        p.stacks.update(Inner=inner, OuterOnly=outer_only)
        team = Construct(inner, "Team")
        p.fns["team"] = py_function(team, "TeamFn")
        p.fns["stack"] = py_function(inner, "StackFn")
        p.fns["not_included"] = py_function(inner, "NotIncludedFn")
        p.fns["app"] = py_function(outer_only, "AppFn")
        # Selected by all aspects, but no layer fits: a skip warning, no word about settings.
        p.fns["retired"] = any_function(inner, "RetiredFn", lambda_.Runtime.GO_1_X)
        with_loki_logging(app, loki_ip="10.0.0.1")
        # Added to the stack, with include: NotIncludedFn falls back to the App's aspect.
        with_loki_logging(inner, loki_ip="10.0.0.2", exclude=[p.fns["not_included"]])
        with_loki_logging(team, loki_ip="10.0.0.3")
        # Same environment as the stack's aspect, but its own layer.
        layered = Construct(inner, "Layered")
        p.fns["layered"] = py_function(layered, "LayeredFn")
        with_loki_logging(layered, loki_ip="10.0.0.2", layer=LAYER_ARN)
        app.synth()
    return p


# -- helpers for reading synthesized output ------------------------------------------------
def logical_id(fn: IConstruct) -> str:
    """The CloudFormation logical id of a function's L1 (or of an L1 itself)."""
    node = fn.node.default_child or fn
    return Stack.of(fn).get_logical_id(node)  # type: ignore[arg-type]


def props_of(template: dict[str, Any], fn: IConstruct) -> dict[str, Any]:
    return template["Resources"][logical_id(fn)]["Properties"]  # type: ignore[no-any-return]


def env_of(template: dict[str, Any], fn: IConstruct) -> dict[str, Any]:
    return props_of(template, fn).get("Environment", {}).get("Variables", {})  # type: ignore[no-any-return]


def annotation_paths(stack: Stack, kind: str, pattern: str) -> set[str]:
    """Paths (as ``/Stack/...``) of the warnings/errors whose message matches ``pattern``."""
    found = Annotations.from_stack(stack)
    finder = {"warning": found.find_warning, "error": found.find_error, "info": found.find_info}[kind]
    return {m.id for m in finder("*", Match.string_like_regexp(pattern))}
