"""Which build each function gets: the pure runtime table, and what the aspect does with it."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from loki_telemetry_construct import WarningIds, layer, runtimes, with_loki_logging
from loki_telemetry_construct import __main__ as cli
from loki_telemetry_construct._contract import envvars
from loki_telemetry_construct.runtimes import SKIP_REASONS, Skip, classify
from tests.construct.apps import (
    MANAGED_INSTANCES_OTHERS,
    NATIVE_X86_ARN,
    TEN_FUNCTIONS,
    Scenarios,
    annotation_paths,
    env_of,
    node_function,
    props_of,
    stand_in_layers,
)

NATIVE_IDS = {
    "x86_64": "LokiTelemetryExtensionLayerNativeX86",
    "arm64": "LokiTelemetryExtensionLayerNativeArm64",
}
PYTHON_ID = "LokiTelemetryExtensionLayer"


def _cdk_runtimes() -> dict[str, lambda_.Runtime]:
    """Every runtime aws-cdk-lib names as a constant of ``Runtime``."""
    found = {}
    for attr in dir(lambda_.Runtime):
        value = getattr(lambda_.Runtime, attr)
        if attr.isupper() and isinstance(value, lambda_.Runtime):
            found[value.name] = value
    return found


def _layer_ref(template: dict[str, Any], fn: Any) -> str:
    (ref,) = props_of(template, fn)["Layers"]
    logical: str = ref["Ref"]
    return logical


def _layer_kind(template: dict[str, Any], fn: Any) -> str:
    """'python', 'native-x86_64' or 'native-arm64', from the layer's logical id."""
    logical = _layer_ref(template, fn)
    for arch, prefix in NATIVE_IDS.items():
        if logical.startswith(prefix):
            return f"native-{arch}"
    assert logical.startswith(PYTHON_ID), logical
    return "python"


# -- the pure table ----------------------------------------------------------------------------
def test_every_runtime_aws_cdk_lib_knows_is_classified() -> None:
    # GIVEN every Runtime constant of this aws-cdk-lib: none may fall through as "unknown"
    unknown = [name for name in _cdk_runtimes() if classify(name) == Skip.UNKNOWN_RUNTIME]
    assert unknown == []
    assert not runtimes.NATIVE_RUNTIMES & runtimes.RETIRED_RUNTIMES


def test_auto_gives_python_3_10_to_3_13_the_python_build_and_every_other_runtime_the_native_one() -> None:
    for name in _cdk_runtimes():
        got = classify(name, "auto")
        if name in ("python3.10", "python3.11", "python3.12", "python3.13"):
            assert got == "python", name
        elif name == "FROM_IMAGE":
            assert got == Skip.CONTAINER_IMAGE
        elif name in runtimes.RETIRED_RUNTIMES:
            assert got == Skip.RETIRED_RUNTIME, name
        else:
            assert got == "native", name
    for name in ("python3.14", "python3.9", "nodejs24.x", "java25", "dotnet10", "ruby3.4", "provided.al2023"):
        assert classify(name) == "native", name


def test_python_mode_instruments_only_the_python_builds_runtimes() -> None:
    assert classify("python3.12", "python") == "python"
    assert classify("python3.14", "python") == Skip.PYTHON_BUILD_UNSUPPORTED
    assert classify("nodejs22.x", "python") == Skip.NOT_PYTHON
    assert classify("provided.al2023", "python") == Skip.NOT_PYTHON


def test_native_mode_uses_the_native_build_everywhere() -> None:
    assert classify("python3.12", "native") == "native"
    assert classify("nodejs22.x", "native") == "native"
    assert classify("go1.x", "native") == Skip.RETIRED_RUNTIME
    assert classify("FROM_IMAGE", "native") == Skip.CONTAINER_IMAGE


def test_the_python_builds_runtimes_are_the_python_layers() -> None:
    assert frozenset(runtimes.PYTHON_BUILD_RUNTIMES) == layer.SUPPORTED_RUNTIME_NAMES


def test_every_skip_has_one_warning_with_a_public_id() -> None:
    public = {v for k, v in vars(WarningIds).items() if k.isupper()}
    assert set(SKIP_REASONS) == set(Skip)
    for skip, (warning_id, message) in SKIP_REASONS.items():
        assert warning_id in public, skip
        assert message.startswith("Loki logging skipped {path}: "), skip


@pytest.mark.parametrize(
    ("runtime", "supported"),
    [
        ("python3.12", False),
        ("python3.13", True),
        ("python3.14", True),
        ("nodejs20.x", False),
        ("nodejs22.x", True),
        ("nodejs24.x", True),
        ("java17", False),
        ("java21", True),
        ("java25", True),
        ("dotnet6", False),
        ("dotnet8", True),
        ("dotnet10", True),
        ("provided.al2", False),
        ("provided.al2023", True),
        ("ruby3.4", False),
    ],
)
def test_managed_instances_runtimes(runtime: str, supported: bool) -> None:
    assert runtimes.managed_instances_supported(runtime) is supported


def test_every_runtime_managed_instances_run_gets_a_build() -> None:
    on_capacity_providers = [name for name in _cdk_runtimes() if runtimes.managed_instances_supported(name)]
    assert "provided.al2023" in on_capacity_providers
    assert "nodejs22.x" in on_capacity_providers
    for name in on_capacity_providers:
        assert classify(name) in ("python", "native"), name


# -- what the aspect does with it --------------------------------------------------------------
def test_ten_function_stack_gives_each_function_the_layer_of_its_kind_and_architecture(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    # GIVEN Python 3.12, Python 3.13 arm64, Python 3.14, Node.js 22, Node.js 24 arm64, Java 21,
    # .NET 8 arm64, Ruby 3.3, provided.al2023 arm64 and provided.al2, and the default aspect
    t = scenario_templates["TenFunctions"]
    got = {key: _layer_kind(t, scenarios.fns[key]) for key, _, _ in TEN_FUNCTIONS}
    # THEN Python 3.10-3.13 share the Python layer, every other one has its architecture's native layer
    expected = {
        key: "python" if runtime.name in runtimes.PYTHON_BUILD_RUNTIMES else f"native-{arch}"
        for key, runtime, arch in TEN_FUNCTIONS
    }
    assert got == expected
    assert sorted(set(got.values())) == ["native-arm64", "native-x86_64", "python"]
    for key, _, arch in TEN_FUNCTIONS:
        props = props_of(t, scenarios.fns[key])
        assert env_of(t, scenarios.fns[key]) == {
            envvars.LOKI_IP: "10.0.0.5",
            envvars.DISPATCH_MIN_BATCH_SIZE: "100",
        }, key
        assert props.get("Architectures", ["x86_64"]) == [arch], key
    # AND each native layer declares its one architecture
    layers = {
        k: r["Properties"] for k, r in t["Resources"].items() if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    for arch, prefix in NATIVE_IDS.items():
        (props,) = [p for k, p in layers.items() if k.startswith(prefix)]
        assert props["CompatibleArchitectures"] == [arch]
    assert not annotation_paths(scenarios.stacks["TenFunctions"], "warning", ".*loki-telemetry-construct.*")


def test_native_mode_gives_python_functions_the_native_layer(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t = scenario_templates["NativeEverywhere"]
    assert _layer_kind(t, scenarios.fns["native_py"]) == "native-x86_64"
    assert _layer_kind(t, scenarios.fns["native_py_arm"]) == "native-arm64"


def _warned(stack: Stack, warning_id: str) -> set[str]:
    return annotation_paths(stack, "warning", f".*\\[ack: {warning_id}\\].*")


def test_python_mode_warns_about_everything_else(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, f, st = scenario_templates["PythonOnly"], scenarios.fns, scenarios.stacks["PythonOnly"]
    assert _layer_kind(t, f["po_py"]) == "python"
    for key in ("po_node", "po_py314"):
        assert "Layers" not in props_of(t, f[key])
        assert env_of(t, f[key]) == {}
    assert _warned(st, WarningIds.NON_PYTHON_RUNTIME) == {f"/{f['po_node'].node.path}"}
    assert _warned(st, WarningIds.UNSUPPORTED_PYTHON_RUNTIME) == {f"/{f['po_py314'].node.path}"}


def test_functions_no_layer_can_serve_are_warned_about_never_skipped_silently(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, f, st = scenario_templates["NoLayerFits"], scenarios.fns, scenarios.stacks["NoLayerFits"]
    for key in ("retired_py37", "retired_go", "unknown"):
        assert "Layers" not in props_of(t, f[key])
    assert _warned(st, WarningIds.RETIRED_RUNTIME) == {
        f"/{f['retired_py37'].node.path}",
        f"/{f['retired_go'].node.path}",
    }
    assert _warned(st, WarningIds.UNKNOWN_RUNTIME) == {
        f"/{f['unknown'].node.path}",
        f"/{f['odd_arch'].node.path}",
    }
    assert "Layers" not in props_of(t, f["odd_arch"])
    assert annotation_paths(st, "warning", ".*its architecture is riscv64.*x86_64 and arm64 only.*")
    assert annotation_paths(st, "warning", ".*runtime go1.x runs on Amazon Linux 1.*")
    assert annotation_paths(st, "warning", ".*runtime python3.99 is not one this library knows.*")


def test_functions_on_a_capacity_provider_are_instrumented(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    # GIVEN a Python 3.13 and a Node.js 24 function on a Lambda Managed Instances capacity provider
    t = scenario_templates["ManagedInstances"]
    py, node = scenarios.fns["mi_py"], scenarios.fns["mi_node"]
    # THEN they are on the capacity provider (CDK wired it) and get their layers and environment
    for fn in (py, node):
        assert "CapacityProviderConfig" in props_of(t, fn), fn.node.path
        assert env_of(t, fn)[envvars.LOKI_URL] == "https://logs-prod-012.grafana.net/loki/api/v1/push"
    assert _layer_kind(t, py) == "python"
    assert _layer_kind(t, node) == "native-x86_64"
    # AND every other runtime the mode runs gets the native build and the environment
    for key, _ in MANAGED_INSTANCES_OTHERS:
        fn = scenarios.fns[key]
        assert "CapacityProviderConfig" in props_of(t, fn), key
        assert _layer_kind(t, fn) == "native-x86_64", key
        assert envvars.LOKI_URL in env_of(t, fn), key
    assert not annotation_paths(
        scenarios.stacks["ManagedInstances"], "warning", ".*loki-telemetry-construct.*"
    )


def test_container_image_warning_says_how_to_put_the_extension_into_the_image() -> None:
    message = runtimes.describe(Skip.CONTAINER_IMAGE, path="S/Image").message
    assert "python -m loki_telemetry_construct write-layer" in message
    assert "COPY loki-layer/ /opt/" in message


@pytest.mark.parametrize(
    ("arch", "body"), [("x86_64", b"\x7fELF stand-in x86_64"), ("arm64", b"\x7fELF stand-in arm64")]
)
def test_write_layer_copies_the_native_tree_for_a_dockerfile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arch: str, body: bytes
) -> None:
    # GIVEN the built trees (stand-ins here)  WHEN the command writes one into a folder
    with stand_in_layers():
        assert cli.main(["write-layer", "--architecture", arch, str(tmp_path / "loki-layer")]) == 0
    # THEN the folder is what lands in /opt, the binary executable, and the output says what to COPY
    binary = tmp_path / "loki-layer" / "extensions" / "loki-telemetry-extension"
    assert binary.read_bytes() == body
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert "COPY loki-layer/ /opt/" in capsys.readouterr().out


def test_a_missing_native_build_fails_synth_saying_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a checkout where the native trees were never built (the Python one was)

    def missing(build: str, architecture: lambda_.Architecture | None = None) -> Path:
        if build == "native":
            raise layer.LayerNotBuiltError("the native extension for x86_64 is not built: run `make layers`")
        with stand_in_layers():
            return layer.layer_tree(build, architecture)  # type: ignore[arg-type]

    monkeypatch.setattr(layer, "layer_tree", missing)
    app = App()
    node_function(Stack(app, "S"), "Node")
    with_loki_logging(app, loki_ip="10.0.0.5")
    # WHEN it is synthesized  THEN synthesis stops with the layer's message (through jsii)
    with pytest.raises(RuntimeError, match=r"not built: run `make layers`"):
        app.synth()


def test_native_layers_of_your_own_replace_the_ones_the_aspect_creates(
    scenarios: Scenarios, scenario_templates: dict[str, Any]
) -> None:
    t, f = scenario_templates["NativeLayers"], scenarios.fns
    # x86_64 was given as an ARN: used as is, nothing created for it
    assert props_of(t, f["nl_x86"])["Layers"] == [NATIVE_X86_ARN]
    assert not [k for k in t["Resources"] if k.startswith(NATIVE_IDS["x86_64"])]
    # arm64 was not: the aspect's own layer; Python functions keep the Python build
    assert _layer_kind(t, f["nl_arm"]) == "native-arm64"
    assert _layer_kind(t, f["nl_py"]) == "python"
