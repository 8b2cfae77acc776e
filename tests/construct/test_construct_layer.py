"""LokiTelemetryLayer: properties, the staged assets, and a synth that builds and runs nothing.

The layer trees come from a module fixture that builds the Python tree with ``hatch_build.py``
(exactly as ``make layers`` and the wheel do) and writes stand-in native binaries (an ELF header
is all the construct looks at); the real Go build is covered by tests/packaging.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

import hatch_build
from loki_telemetry_construct import LokiTelemetryLayer, layer
from loki_telemetry_construct.layer import (
    MAX_COMPATIBLE_RUNTIMES,
    PYTHON_BUILD_RUNTIMES,
    LayerNotBuiltError,
)

LAUNCHER = "extensions/loki-telemetry-extension"
LAYER_TYPE = "AWS::Lambda::LayerVersion"


def fake_elf(machine: int) -> bytes:
    # ELF64, little-endian, ET_EXEC, e_machine: all that check_elf and `file` look at.
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00" + machine.to_bytes(2, "little") + b"\x00" * 44


def write_native(root: Path) -> None:
    for arch, machine in hatch_build.ELF_MACHINE.items():
        binary = root / "native" / arch / LAUNCHER
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_bytes(fake_elf(machine) + arch.encode())
        binary.chmod(0o755)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A layers root as ``make layers`` writes it: python/ (really built) and native/<arch>/."""
    root = tmp_path_factory.mktemp("layers")
    hatch_build.build_python_tree(root / "python")
    write_native(root)
    return root


@pytest.fixture
def layers(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the built trees, which the construct stages (tests may damage it)."""
    root = tmp_path / "layers"
    shutil.copytree(built, root, symlinks=True)
    monkeypatch.setattr(layer, "layers_root", lambda: root)
    yield root


def synth(outdir: Path, *layers_kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[Path]]:
    app = App(outdir=str(outdir), analytics_reporting=False)
    stack = Stack(app, "Layer")
    for i, kwargs in enumerate(layers_kwargs):
        LokiTelemetryLayer(stack, f"LokiLayer{i}", **kwargs)
    app.synth()
    template = dict(Template.from_stack(stack).to_json())
    keys = [
        r["Properties"]["Content"]["S3Key"] for r in template["Resources"].values() if r["Type"] == LAYER_TYPE
    ]
    # Staged as cdk.out/asset.<hash>/, uploaded as <hash>.zip.
    return template, [outdir / f"asset.{key.removesuffix('.zip')}" for key in keys]


def layer_props(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == LAYER_TYPE]


def test_python_layer_properties(layers: Path, tmp_path: Path) -> None:
    template, _ = synth(tmp_path / "out", {})
    (props,) = layer_props(template)
    assert props["CompatibleRuntimes"] == list(PYTHON_BUILD_RUNTIMES)
    assert props["CompatibleArchitectures"] == ["x86_64", "arm64"]
    assert props["LicenseInfo"] == "Apache-2.0"
    assert "Loki" in props["Description"] and "Python build" in props["Description"]


def test_native_layers_one_per_architecture_with_runtimes_unset(layers: Path, tmp_path: Path) -> None:
    template, assets = synth(
        tmp_path / "out",
        {"build": "native"},
        {"build": "native", "architecture": lambda_.Architecture.ARM_64},
    )
    x86, arm = layer_props(template)
    assert x86["CompatibleArchitectures"] == ["x86_64"] and arm["CompatibleArchitectures"] == ["arm64"]
    assert "CompatibleRuntimes" not in x86 and "CompatibleRuntimes" not in arm
    assert "native build, arm64" in arm["Description"]
    for asset, arch in zip(assets, ("x86_64", "arm64"), strict=True):
        binary = asset / LAUNCHER
        assert binary.read_bytes() == (layers / "native" / arch / LAUNCHER).read_bytes()
        assert stat.S_IMODE(binary.stat().st_mode) == 0o755
        assert [p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()] == [LAUNCHER]


def _layer_runtimes() -> list[lambda_.Runtime]:
    """Every runtime aws-cdk-lib knows that a zip function (and so a layer) can use."""
    found = (getattr(lambda_.Runtime, name) for name in dir(lambda_.Runtime) if name.isupper())
    return [r for r in found if isinstance(r, lambda_.Runtime) and r.name != "FROM_IMAGE"]


def test_the_native_layer_attaches_to_every_runtime(layers: Path, tmp_path: Path) -> None:
    # CDK refuses a layer whose compatible runtimes do not list the function's: unset lets all in.
    app = App(outdir=str(tmp_path / "out"), analytics_reporting=False)
    stack = Stack(app, "Fns")
    native = LokiTelemetryLayer(stack, "Native", build="native")
    code = tmp_path / "code"
    code.mkdir()
    (code / "index.py").write_text("")
    runtimes = _layer_runtimes()
    assert len(runtimes) > MAX_COMPATIBLE_RUNTIMES  # why the list is left unset
    for i, runtime in enumerate(runtimes):
        lambda_.Function(
            stack,
            f"Fn{i}",
            runtime=runtime,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(code)),
            layers=[native],
        )
    app.synth()


def test_too_many_compatible_runtimes_is_refused(layers: Path) -> None:
    stack = Stack(App(), "S")
    with pytest.raises(
        ValueError, match=r"compatible_runtimes has \d+ entries; CloudFormation allows at most 15"
    ):
        LokiTelemetryLayer(stack, "L", build="native", compatible_runtimes=_layer_runtimes())


def test_staged_python_asset(layers: Path, tmp_path: Path) -> None:
    _, (asset,) = synth(tmp_path / "out", {})
    launcher = asset / LAUNCHER
    assert launcher.read_bytes().startswith(b"#!/bin/sh")
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o755
    # Nothing under /opt/python: the extension must never shadow the function's imports.
    assert not (asset / "python").exists()
    # The staged asset is the built tree, file for file.
    assert sorted(p.relative_to(asset) for p in asset.rglob("*")) == sorted(
        p.relative_to(layers / "python") for p in (layers / "python").rglob("*")
    )
    pkg = asset / "loki_telemetry_extension"
    sources = sorted(pkg.glob("*.py"))
    assert (pkg / "envvars.py") in sources
    tags = {"cpython-" + r.removeprefix("python").replace(".", "") for r in PYTHON_BUILD_RUNTIMES}
    for tag in tags:
        for module in sources:
            pyc = pkg / "__pycache__" / f"{module.stem}.{tag}.pyc"
            # PEP 552 flags word: bit 0 = hash-based, bit 1 = check_source (must be off: the zip
            # loses mtimes, and checking would read and hash every source at each start).
            assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, pyc
    # Optimisation level 0 only (the runtime never runs with -O), nothing else in the caches.
    assert {p.name.split(".")[-2] for p in pkg.glob("__pycache__/*")} == tags


def test_precompile_off_stages_no_bytecode(layers: Path, tmp_path: Path) -> None:
    _, (asset,) = synth(tmp_path / "out", {"precompile": False})
    assert (asset / LAUNCHER).is_file()
    assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def _import_extension(opt: Path) -> subprocess.CompletedProcess[str]:
    # Exactly as the launcher imports it: isolated, no site, the layer root appended.
    code = "import sys; sys.path.append(sys.argv[1]); import loki_telemetry_extension.envvars"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(opt)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_shipped_pyc_is_what_gets_imported(layers: Path, tmp_path: Path) -> None:
    # GIVEN a copy of the staged layer whose envvars.py source no longer compiles
    _, (asset,) = synth(tmp_path / "out", {})
    opt = tmp_path / "opt"
    shutil.copytree(asset, opt)
    source = opt / "loki_telemetry_extension" / "envvars.py"
    source.write_text("this is not python (\n")
    os.utime(source, (0, 0))  # an unchecked-hash pyc must not care about mtimes either
    # WHEN the launcher's interpreter imports it, THEN the shipped bytecode is used
    proc = _import_extension(opt)
    assert proc.returncode == 0, proc.stderr
    # Control: without the pyc the very same import fails, so the pass above is the pyc's doing.
    shutil.rmtree(opt / "loki_telemetry_extension" / "__pycache__")
    proc = _import_extension(opt)
    assert proc.returncode != 0 and "SyntaxError" in proc.stderr


def _bin_dir(path: Path, links: dict[str, str]) -> str:
    path.mkdir()
    for name, target in links.items():
        (path / name).symlink_to(target)
    return str(path)


def _identical(cmp: filecmp.dircmp[str]) -> bool:
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_identical(sub) for sub in cmp.subdirs.values())


def test_the_staged_tree_does_not_depend_on_the_interpreters_on_path(
    layers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a synth whose PATH holds only python3.11 ...
    pythons = {f"python{minor}": path for minor, (path, _) in hatch_build.find_pythons().items()}
    monkeypatch.setenv("PATH", _bin_dir(tmp_path / "one", {"python3.11": pythons["python3.11"]}))
    _, (one,) = synth(tmp_path / "a", {})
    # ... one whose PATH holds every supported Python, and one with none at all
    monkeypatch.setenv("PATH", _bin_dir(tmp_path / "all", pythons))
    _, (every,) = synth(tmp_path / "b", {})
    monkeypatch.setenv("PATH", _bin_dir(tmp_path / "none", {}))
    _, (none,) = synth(tmp_path / "c", {})
    # THEN all three stage the same asset, byte for byte, with .pyc for every supported runtime
    assert one.name == every.name == none.name
    for other in (every, none):
        # ignore=[]: dircmp skips __pycache__ by default, and the .pyc are what differed.
        assert _identical(filecmp.dircmp(one, other, ignore=[])), (one, other)
    assert len(list(one.rglob("*.pyc"))) == len(PYTHON_BUILD_RUNTIMES) * len(list(one.rglob("*.py")))


def test_synth_runs_no_process(layers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Compiling at synth made the bytes machine-dependent and cost 0.5-0.7 s per synth.
    started: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise AssertionError(f"synth started a process: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    arm = lambda_.Architecture.ARM_64
    synth(tmp_path / "out", {}, {"build": "native"}, {"build": "native", "architecture": arm})
    # Also as a checkout stages build/layers: the freshness check only reads the sources.
    monkeypatch.setattr(layer, "CHECKOUT_LAYERS", layers)
    layer._checkout_digests.cache_clear()
    manifest = {tree: {"sources": digest} for tree, digest in hatch_build.source_digests().items()}
    (layers / "manifest.json").write_text(json.dumps(manifest))
    synth(tmp_path / "out2", {}, {"build": "native", "architecture": arm})
    assert started == []


def test_missing_native_binaries_fail_synth_saying_how_to_build_them(layers: Path) -> None:
    shutil.rmtree(layers / "native" / "arm64")
    stack = Stack(App(), "S")
    LokiTelemetryLayer(stack, "X86", build="native")  # the other architecture is there
    with pytest.raises(
        LayerNotBuiltError, match=r"native extension for arm64 is not built .*`make layers`.*wheel"
    ):
        LokiTelemetryLayer(stack, "Arm", build="native", architecture=lambda_.Architecture.ARM_64)


def test_a_missing_python_tree_or_pyc_fails_synth(layers: Path) -> None:
    stack = Stack(App(), "S")
    for pyc in (layers / "python").rglob("*.cpython-313.pyc"):
        pyc.unlink()
    with pytest.raises(LayerNotBuiltError, match=r"no \.pyc for python3\.13: run `make layers`"):
        LokiTelemetryLayer(stack, "Py")
    shutil.rmtree(layers / "python")
    with pytest.raises(LayerNotBuiltError, match=r"the Python layer is not built .*`make layers`"):
        LokiTelemetryLayer(stack, "Py2")


@pytest.mark.parametrize(("build", "tree"), [("python", "python"), ("native", "native/x86_64")])
def test_an_extension_that_lost_its_executable_bit_fails_synth(layers: Path, build: str, tree: str) -> None:
    # Lambda never starts a non-executable extension, and says nothing: never stage one.
    (layers / tree / LAUNCHER).chmod(0o644)
    with pytest.raises(LayerNotBuiltError, match=r"mode 0644, but Lambda only starts extensions that are"):
        LokiTelemetryLayer(Stack(App(), "S"), "L", build=build)  # type: ignore[arg-type]


def test_a_checkout_refuses_trees_built_from_other_sources(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a checkout whose build/layers records the digests of the sources checked out
    root = tmp_path / "layers"
    shutil.copytree(built, root)
    monkeypatch.setattr(layer, "CHECKOUT_LAYERS", root)
    monkeypatch.setattr(layer, "layers_root", lambda: root)
    manifest = {tree: {"sources": digest} for tree, digest in hatch_build.source_digests().items()}
    (root / "manifest.json").write_text(json.dumps(manifest))
    LokiTelemetryLayer(Stack(App(), "S"), "L")
    # WHEN the sources change after the build, THEN synth says how to rebuild
    manifest["python"]["sources"] = "0" * 64
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LayerNotBuiltError, match=r"python layer .* not built from the sources checked out"):
        LokiTelemetryLayer(Stack(App(), "S"), "L")
    LokiTelemetryLayer(Stack(App(), "N"), "L", build="native")  # the native tree is still current


def test_bad_arguments_name_the_option() -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="build='java'"):
        LokiTelemetryLayer(stack, "A", build="java")  # type: ignore[arg-type]
    both = list(layer.SUPPORTED_ARCHITECTURES)
    with pytest.raises(ValueError, match="one layer per architecture"):
        LokiTelemetryLayer(stack, "B", build="native", compatible_architectures=both)
    with pytest.raises(ValueError, match="precompile=False applies to build='python' only"):
        LokiTelemetryLayer(stack, "C", build="native", precompile=False)
