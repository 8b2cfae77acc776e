"""hatch_build.py: the layer trees are complete, deterministic and rebuilt only when their sources change."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

import hatch_build
from hatch_build import LayerBuildError
from loki_telemetry_construct import layer

LAUNCHER = "extensions/loki-telemetry-extension"


def _modes(tree: Path) -> dict[str, int]:
    return {p.relative_to(tree).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in sorted(tree.rglob("*"))}


def _same_bytes(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b, ignore=[])  # the default ignores __pycache__: the point here
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    return not mismatch and not errors and all(_same_bytes(a / d, b / d) for d in cmp.common_dirs)


def test_a_missing_python_fails_the_build_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a machine with only the interpreter running the build (no python3.X on PATH, no pyenv)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    # WHEN the Python tree is built, THEN it fails naming every other supported version
    with pytest.raises(LayerBuildError) as caught:
        hatch_build.build_python_tree(tmp_path / "out")
    missing = [v for v in hatch_build.PYTHON_VERSIONS if v != here]
    assert f"no CPython {', '.join(missing)} was found" in str(caught.value)
    assert "pyenv install" in str(caught.value)
    assert not (tmp_path / "out").exists()  # nothing half-built is left behind


def test_the_tree_is_complete_with_fixed_modes_whatever_the_source_modes(tmp_path: Path) -> None:
    # GIVEN a source tree whose launcher lost its executable bit and whose modules are 0600
    source = tmp_path / "src"
    shutil.copytree(hatch_build.PYTHON_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / LAUNCHER).chmod(0o644)
    for module in (source / "loki_telemetry_extension").glob("*.py"):
        module.chmod(0o600)
    # WHEN it is built, THEN Lambda gets an executable launcher and readable everything else
    hatch_build.build_python_tree(tmp_path / "out", source=source)
    modes = _modes(tmp_path / "out")
    assert modes.pop(LAUNCHER) == 0o755
    assert modes.pop("extensions") == 0o755
    dirs = {p for p in modes if (tmp_path / "out" / p).is_dir()}
    assert {modes[d] for d in dirs} == {0o755}
    assert {modes[f] for f in modes if f not in dirs} == {0o644}
    # and one unchecked-hash .pyc per module and supported Python
    modules = sorted(p.stem for p in (source / "loki_telemetry_extension").glob("*.py"))
    tags = sorted(f"cpython-{v.replace('.', '')}" for v in hatch_build.PYTHON_VERSIONS)
    pycs = sorted((tmp_path / "out").rglob("*.pyc"))
    assert sorted(p.name for p in pycs) == sorted(f"{m}.{t}.pyc" for m in modules for t in tags)
    # PEP 552 flags: hash-based, source never checked (the asset zip loses mtimes anyway).
    assert {int.from_bytes(p.read_bytes()[4:8], "little") for p in pycs} == {0b01}


def test_two_builds_give_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hatch_build.build_python_tree(tmp_path / "a")
    # A different working directory and a PATH with no Python: interpreters come from pyenv then.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    hatch_build.build_python_tree(tmp_path / "b")
    assert _same_bytes(tmp_path / "a", tmp_path / "b")
    assert _modes(tmp_path / "a") == _modes(tmp_path / "b")


def test_trees_are_rebuilt_only_when_their_sources_change(tmp_path: Path) -> None:
    out = tmp_path / "layers"
    assert hatch_build.build_layers(out, trees=["python"]) == ["python"]
    assert hatch_build.build_layers(out, trees=["python"]) == []  # up to date: kept
    manifest = json.loads((out / hatch_build.MANIFEST).read_text())
    assert manifest["python"]["sources"] == hatch_build.source_digests()["python"]
    assert set(manifest["python"]["pythons"]) == set(hatch_build.PYTHON_VERSIONS)
    # A tree built from other sources (what the manifest records) is rebuilt.
    manifest["python"]["sources"] = "0" * 64
    (out / hatch_build.MANIFEST).write_text(json.dumps(manifest))
    assert hatch_build.build_layers(out, trees=["python"]) == ["python"]


def _stand_in_native_build(tmp_path: Path, machines: dict[str, int]) -> Path:
    """A script with build.py's command line that writes ELF headers (and a stray file)."""
    script = tmp_path / "fake_build.py"
    script.write_text(
        "import argparse, pathlib\n"
        "p = argparse.ArgumentParser(); p.add_argument('--out'); p.add_argument('--arch', action='append')\n"
        "a = p.parse_args()\n"
        f"machines = {machines!r}\n"
        "for arch in a.arch:\n"
        "    d = pathlib.Path(a.out) / arch / 'extensions'; d.mkdir(parents=True)\n"
        "    m = machines[arch].to_bytes(2, 'little')\n"
        "    elf = b'\\x7fELF\\x02\\x01\\x01' + bytes(9) + b'\\x02\\x00' + m\n"
        "    (d / 'loki-telemetry-extension').write_bytes(elf + bytes(44))\n"
        "    (d / 'loki-telemetry-extension').chmod(0o600)\n"
        "    (d.parent / 'build.log').write_text('stray')\n"
    )
    return script


def test_native_trees_hold_only_the_binary_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "LOKI_LAYER_NATIVE_BUILD", str(_stand_in_native_build(tmp_path, hatch_build.ELF_MACHINE))
    )
    hatch_build.build_native_trees(tmp_path / "native")
    for arch in hatch_build.NATIVE_ARCHITECTURES:
        assert _modes(tmp_path / "native" / arch) == {"extensions": 0o755, LAUNCHER: 0o755}


def test_a_binary_for_the_wrong_architecture_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped = {"x86_64": hatch_build.ELF_MACHINE["arm64"], "arm64": hatch_build.ELF_MACHINE["x86_64"]}
    monkeypatch.setenv("LOKI_LAYER_NATIVE_BUILD", str(_stand_in_native_build(tmp_path, swapped)))
    with pytest.raises(LayerBuildError, match=r"not a 64-bit ELF executable for x86_64 \(e_machine 0xb7\)"):
        hatch_build.build_native_trees(tmp_path / "native")


def test_the_wheel_zip_depends_on_the_files_only_and_unpacks_with_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Python tree, zipped twice with different file times in between
    tree = tmp_path / "python"
    hatch_build.build_python_tree(tree)
    hatch_build.write_tree_zip(tree, tmp_path / "a.zip")
    for path in tree.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    hatch_build.write_tree_zip(tree, tmp_path / "b.zip")
    # THEN the bytes are the same, and the construct unpacks exactly the tree, modes included
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    layer._unpacked.cache_clear()
    unpacked = layer._unpacked(tmp_path / "a.zip")
    assert unpacked.is_relative_to(tmp_path / "cache")
    assert _same_bytes(tree, unpacked)
    assert _modes(tree) == _modes(unpacked)
    # An altered copy in the cache (a lost executable bit, an edited file) is replaced, not staged.
    (unpacked / LAUNCHER).chmod(0o644)
    (unpacked / "loki_telemetry_extension" / "envvars.py").write_text("# edited\n")
    layer._unpacked.cache_clear()
    again = layer._unpacked(tmp_path / "a.zip")
    assert _same_bytes(tree, again)
    assert _modes(tree) == _modes(again)
    layer._unpacked.cache_clear()


def test_the_build_and_the_construct_agree_on_what_is_built() -> None:
    assert [f"python{v}" for v in hatch_build.PYTHON_VERSIONS] == list(layer.PYTHON_BUILD_RUNTIMES)
    assert list(hatch_build.NATIVE_ARCHITECTURES) == [a.name for a in layer.NATIVE_ARCHITECTURES]
    assert layer.EXTENSION_FILE.removeprefix("extensions/") == hatch_build.EXTENSION_NAME
