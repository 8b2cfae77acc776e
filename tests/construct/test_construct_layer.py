"""LokiTelemetryLayer: properties, the staged asset, hash stability and the built wheel."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, FileSystem, Stack
from aws_cdk.assertions import Template

from loki_telemetry_construct import LokiTelemetryLayer
from loki_telemetry_construct.layer import LAYER_EXCLUDES, LAYER_ROOT

LAUNCHER = "extensions/loki-telemetry-extension"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir), analytics_reporting=False)
    stack = Stack(app, "Layer")
    LokiTelemetryLayer(stack, "LokiLayer")
    app.synth()
    return Template.from_stack(stack).to_json(), outdir


def test_layer_properties(synthesized: tuple[dict[str, Any], Path]) -> None:
    template, _ = synthesized
    (layer,) = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    assert layer["CompatibleRuntimes"] == ["python3.10", "python3.11", "python3.12", "python3.13"]
    assert layer["CompatibleArchitectures"] == ["x86_64", "arm64"]
    assert layer["LicenseInfo"] == "Apache-2.0"
    assert "Loki" in layer["Description"]


def _asset_dir(template: dict[str, Any], outdir: Path) -> Path:
    (layer,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    # Staged as cdk.out/asset.<hash>/, uploaded as <hash>.zip.
    key = layer["Properties"]["Content"]["S3Key"]
    return outdir / f"asset.{key.removesuffix('.zip')}"


def test_staged_asset_has_an_executable_launcher_and_no_caches(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template, outdir = synthesized
    asset = _asset_dir(template, outdir)
    launcher = asset / LAUNCHER
    assert launcher.read_bytes().startswith(b"#!/bin/sh")
    assert stat.S_IMODE(launcher.stat().st_mode) & 0o111 == 0o111
    assert (asset / "loki_telemetry_extension" / "__main__.py").is_file()
    assert (asset / "loki_telemetry_extension" / "envvars.py").is_file()
    # Nothing under /opt/python: the extension must never shadow the function's imports.
    assert not (asset / "python").exists()
    assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def test_asset_hash_ignores_caches(tmp_path: Path) -> None:
    # GIVEN a copy of the layer root
    copy = tmp_path / "layer"
    shutil.copytree(LAYER_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    before = FileSystem.fingerprint(str(copy), exclude=list(LAYER_EXCLUDES))
    # WHEN Python leaves bytecode caches in it
    cache = copy / "loki_telemetry_extension" / "__pycache__"
    cache.mkdir()
    (cache / "envvars.cpython-312.pyc").write_bytes(b"\x00cache")
    (copy / "loki_telemetry_extension" / "stray.pyc").write_bytes(b"\x00")
    # THEN the asset fingerprint is unchanged, while a real change does change it
    assert FileSystem.fingerprint(str(copy), exclude=list(LAYER_EXCLUDES)) == before
    (copy / "loki_telemetry_extension" / "envvars.py").write_text("# changed\n")
    assert FileSystem.fingerprint(str(copy), exclude=list(LAYER_EXCLUDES)) != before


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel once, the way a release would (``python -m build``).

    Isolated by default (hatchling from the package index); with hatchling already
    installed the build runs without isolation, so it also works offline.
    """
    outdir = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-isolation"]
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", *isolation, "--outdir", str(outdir), str(REPO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (whl,) = outdir.glob("*.whl")
    return whl


def test_wheel_carries_the_layer_with_the_launcher_executable(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        launcher = infos[f"loki_telemetry_construct/_layer/{LAUNCHER}"]
        mode = launcher.external_attr >> 16
        assert stat.S_IMODE(mode) == 0o755
        assert zf.read(launcher).startswith(b"#!/bin/sh")
        names = set(infos)
        for required in (
            "loki_telemetry_construct/__init__.py",
            "loki_telemetry_construct/py.typed",
            "loki_telemetry_construct/aspect.py",
            "loki_telemetry_construct/_layer/loki_telemetry_extension/__main__.py",
            "loki_telemetry_construct/_layer/loki_telemetry_extension/envvars.py",
        ):
            assert required in names, required
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "Requires-Dist: aws-cdk-lib<3,>=" in metadata
    assert "Requires-Dist: constructs<11,>=" in metadata


def test_wheel_layer_matches_the_checkout(wheel: Path, tmp_path: Path) -> None:
    # The wheel's copy of the extension is byte-identical to extension/ (no stale files).
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path)
    shipped = tmp_path / "loki_telemetry_construct" / "_layer"
    assert FileSystem.fingerprint(str(shipped), exclude=list(LAYER_EXCLUDES)) == FileSystem.fingerprint(
        str(LAYER_ROOT), exclude=list(LAYER_EXCLUDES)
    )
