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
from aws_cdk.assertions import Annotations, Match, Template

from loki_telemetry_construct import LokiTelemetryLayer, WarningIds
from loki_telemetry_construct._precompile import is_excluded
from loki_telemetry_construct.layer import LAYER_EXCLUDES, LAYER_ROOT

LAUNCHER = "extensions/loki-telemetry-extension"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, Any]], Path]:
    """One synth: the default (precompiled) layer and a ``precompile=False`` one."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(outdir=str(outdir), analytics_reporting=False)
    stack = Stack(app, "Layer")
    LokiTelemetryLayer(stack, "LokiLayer")
    plain = Stack(app, "Plain")
    LokiTelemetryLayer(plain, "LokiLayer", precompile=False)
    app.synth()
    return {s.stack_name: Template.from_stack(s).to_json() for s in (stack, plain)}, outdir


@pytest.fixture(scope="module")
def synthesized(app_out: tuple[dict[str, dict[str, Any]], Path]) -> tuple[dict[str, Any], Path]:
    return app_out[0]["Layer"], app_out[1]


@pytest.fixture(scope="module")
def synthesized_plain(app_out: tuple[dict[str, dict[str, Any]], Path]) -> tuple[dict[str, Any], Path]:
    return app_out[0]["Plain"], app_out[1]


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


def _sources(asset: Path) -> list[str]:
    return sorted(
        p.relative_to(asset).as_posix()
        for p in asset.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def test_staged_asset_has_an_executable_launcher(synthesized: tuple[dict[str, Any], Path]) -> None:
    template, outdir = synthesized
    asset = _asset_dir(template, outdir)
    launcher = asset / LAUNCHER
    assert launcher.read_bytes().startswith(b"#!/bin/sh")
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o755
    assert (asset / "loki_telemetry_extension" / "__main__.py").is_file()
    assert (asset / "loki_telemetry_extension" / "envvars.py").is_file()
    # Nothing under /opt/python: the extension must never shadow the function's imports.
    assert not (asset / "python").exists()
    # Exactly the checkout's source files besides the bytecode: no stray caches or leftovers.
    assert _sources(asset) == sorted(
        p.relative_to(LAYER_ROOT).as_posix()
        for p in LAYER_ROOT.rglob("*")
        if p.is_file() and not is_excluded(p.relative_to(LAYER_ROOT), LAYER_EXCLUDES)
    )


def test_staged_asset_has_unchecked_hash_pyc_for_this_interpreter(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template, outdir = synthesized
    pkg = _asset_dir(template, outdir) / "loki_telemetry_extension"
    tag = sys.implementation.cache_tag
    for module in pkg.glob("*.py"):
        pyc = pkg / "__pycache__" / f"{module.stem}.{tag}.pyc"
        assert pyc.is_file(), pyc
        # PEP 552 flags word: bit 0 = hash-based, bit 1 = check_source (must be off: the zip
        # loses mtimes, and checking would read and hash every source at each start).
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, (pyc, flags)
    # Optimisation level 0 only: the runtime never runs with -O.
    assert not list(pkg.glob("__pycache__/*.opt-*.pyc"))
    # Nothing but pyc in the caches, and no caches outside the package.
    assert {p.suffix for p in pkg.glob("__pycache__/*")} == {".pyc"}


def test_precompile_off_stages_no_bytecode(synthesized_plain: tuple[dict[str, Any], Path]) -> None:
    template, outdir = synthesized_plain
    asset = _asset_dir(template, outdir)
    assert (asset / LAUNCHER).is_file()
    assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def _import_extension(layer: Path) -> subprocess.CompletedProcess[str]:
    # Exactly as the launcher imports it: isolated, no site, the layer root appended.
    code = "import sys; sys.path.append(sys.argv[1]); import loki_telemetry_extension.envvars"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(layer)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_shipped_pyc_is_what_gets_imported(
    synthesized: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    # GIVEN a copy of the staged layer whose envvars.py source no longer compiles
    template, outdir = synthesized
    layer = tmp_path / "opt"
    shutil.copytree(_asset_dir(template, outdir), layer)
    source = layer / "loki_telemetry_extension" / "envvars.py"
    source.write_text("this is not python (\n")
    os.utime(source, (0, 0))  # an unchecked-hash pyc must not care about mtimes either
    # WHEN the launcher's interpreter imports it, THEN the shipped bytecode is used
    proc = _import_extension(layer)
    assert proc.returncode == 0, proc.stderr
    # Control: without the pyc the very same import fails, so the pass above is the pyc's doing.
    shutil.rmtree(layer / "loki_telemetry_extension" / "__pycache__")
    proc = _import_extension(layer)
    assert proc.returncode != 0 and "SyntaxError" in proc.stderr


def _layer_key(tmp: Path, **kwargs: Any) -> tuple[str, Path]:
    app = App(outdir=str(tmp), analytics_reporting=False)
    stack = Stack(app, "Layer")
    LokiTelemetryLayer(stack, "LokiLayer", **kwargs)
    app.synth()
    template = Template.from_stack(stack).to_json()
    return _asset_dir(template, tmp).name, _asset_dir(template, tmp)


def _other_interpreter() -> tuple[str, str, bool]:
    """(path, X.Y, real) for a CPython 3.10-3.13 other than this one; a stand-in if none exists.

    pyenv is only a place *this test* looks for one (the library only looks at PATH).
    """
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        found = sorted(Path.home().glob(f".pyenv/versions/{minor}.*/bin/python3"))
        if minor != here and found:
            return str(found[-1]), minor, True
    return sys.executable, here, False


def test_asset_hash_does_not_depend_on_the_interpreters_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a synth with nothing but the synthesizing interpreter (an empty PATH)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    bare_key, bare_asset = _layer_key(tmp_path / "a")
    # WHEN another Lambda Python turns up on PATH
    python, minor, real = _other_interpreter()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / f"python{minor}").symlink_to(python)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    more_key, more_asset = _layer_key(tmp_path / "b")
    # THEN the asset hash (and so the template) is the same
    assert more_key == bare_key
    if real:  # ... though the staged layer really does hold more bytecode
        tag = f"cpython-{minor.replace('.', '')}"
        assert not list(bare_asset.rglob(f"*.{tag}.pyc"))
        assert list(more_asset.rglob(f"*.{tag}.pyc"))
    # while turning precompilation off does change it (a different asset)
    plain_key, _ = _layer_key(tmp_path / "c", precompile=False)
    assert plain_key != bare_key


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


def test_an_interpreter_that_cannot_compile_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the only interpreter found runs, but fails to compile (e.g. a broken install)
    broken = tmp_path / "python3"
    broken.write_text(
        '#!/bin/sh\ncase "$4" in *compileall*) echo "boom: disk full" >&2; exit 3;; esac\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    broken.chmod(0o755)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(broken))
    app = App(outdir=str(tmp_path / "out"), analytics_reporting=False)
    stack = Stack(app, "Layer")
    LokiTelemetryLayer(stack, "LokiLayer")
    # WHEN the app synthesizes, THEN it does, with the plain sources and a warning saying why
    app.synth()
    asset = _asset_dir(Template.from_stack(stack).to_json(), tmp_path / "out")
    assert (asset / LAUNCHER).is_file()
    assert not list(asset.rglob("*.pyc"))
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    texts = [str(w.entry.data) for w in warnings]
    assert any("could not compile" in t and "boom: disk full" in t for t in texts), texts
    assert any("no CPython interpreter" in t and "precompile=False" in t for t in texts), texts
    assert all(WarningIds.PRECOMPILE_SKIPPED in t for t in texts), texts
