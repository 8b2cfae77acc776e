"""The no-Python extension sandbox (chroot) and arm64 binaries under qemu-user.

A static Go test extension (functions/goext) reports what it can see from inside; the
Python and shell extensions must fail to start in the sandbox, as they would in a Lambda
runtime that has no Python.
"""

# ruff: noqa: F811  (pytest fixtures imported from the main module are parameters here)
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from test_lambda_emulator import CODE, FUNCTIONS, RECORDER, _emulator, emulators  # noqa: F401

from harness._shared.gobuild import go_build
from harness.lambda_emulator import LambdaEmulator, LambdaInitError, _sandbox

REPO = Path(__file__).resolve().parents[2]
PYTHON_LAYER = REPO / "extension" / "python"


@pytest.fixture(scope="session")
def goext(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The static Go test extension, for amd64 and arm64."""
    out = tmp_path_factory.mktemp("goext")
    return {arch: go_build(FUNCTIONS / "goext", out / f"goext-{arch}", arch) for arch in ("amd64", "arm64")}


def _layer(root: Path, files: dict[str, Path | str]) -> Path:
    """A layer whose extensions/ holds the given binaries (Path) or script texts (str)."""
    ext = root / "extensions"
    ext.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        if isinstance(src, Path):
            shutil.copyfile(src, ext / name)
        else:
            (ext / name).write_text(src)
        (ext / name).chmod(0o755)
    return root


def test_sandbox_runs_a_static_binary_with_no_python_reachable(
    tmp_path: Path, emulators: list[LambdaEmulator], goext: dict[str, Path]
) -> None:
    layer = _layer(tmp_path / "layer", {"goext": goext["amd64"]})
    lam = _emulator(emulators, layers=[layer], extension_sandbox="no-python")
    with lam:
        result = lam.invoke({})
        assert result.status == "success"
        assert lam.init_result is not None and lam.init_result.extensions == ("goext",)
        # THEN, seen from inside: no python3 on PATH, no shell, no interpreter, and a root
        # that holds only /etc, /opt and /tmp
        (line,) = lam.extension_stdout("goext")
        assert line == "goext ready arch=amd64 python3=none found= root=etc,opt,tmp\n"
        # and its /tmp is the sandbox's own
        assert lam.sandbox_root is not None
        assert (lam.sandbox_root / "tmp" / "goext.arch").read_text() == "amd64"
        shut = lam.shutdown()
    assert shut.exited_by_themselves == ("goext",)


@pytest.mark.parametrize(
    "name, script",
    [
        ("py-ext", f"#!{sys.executable}\nprint('never')\n"),
        ("env-py-ext", "#!/usr/bin/env python3\nprint('never')\n"),
        ("sh-ext", "#!/bin/sh\nexec python3 -c 'print(1)'\n"),
    ],
)
def test_script_extensions_cannot_start_in_the_sandbox(
    tmp_path: Path, emulators: list[LambdaEmulator], name: str, script: str
) -> None:
    layer = _layer(tmp_path / "layer", {name: script})
    # GIVEN the same extension starts outside the sandbox (it only fails later, at register)
    outside = _emulator(emulators, layers=[layer])
    with pytest.raises(LambdaInitError) as plain:
        outside.start()
    assert plain.value.error_type == "Extension.Crash"
    # WHEN sandboxed, THEN it cannot even be executed: its interpreter does not exist there
    lam = _emulator(emulators, layers=[layer], extension_sandbox="no-python")
    with pytest.raises(LambdaInitError) as err:
        lam.start()
    assert err.value.error_type == "Extension.LaunchError"
    assert "No such file or directory" in err.value.message


def test_python_build_of_the_extension_cannot_start_in_the_sandbox(emulators: list[LambdaEmulator]) -> None:
    # The product's Python layer (a /bin/sh launcher that finds python3) is what a Node.js or
    # provided.* function could not run: the sandbox shows it.
    lam = _emulator(emulators, layers=[PYTHON_LAYER], extension_sandbox="no-python")
    with pytest.raises(LambdaInitError) as err:
        lam.start()
    assert err.value.error_type == "Extension.LaunchError"


@pytest.mark.parametrize("sandbox", [None, "no-python"])
def test_arm64_extension_runs_under_qemu(
    tmp_path: Path, emulators: list[LambdaEmulator], goext: dict[str, Path], sandbox: str | None
) -> None:
    # The file name says nothing: detection is by the ELF header.
    layer = _layer(tmp_path / "layer", {"x86_64-looking-name": goext["arm64"]})
    lam = _emulator(emulators, layers=[layer], architecture="arm64", extension_sandbox=sandbox)
    with lam:
        assert lam.invoke({}).status == "success"
        (line,) = lam.extension_stdout("x86_64-looking-name")
        assert line.startswith("x86_64-looking-name ready arch=arm64 ")
        shut = lam.shutdown()
    assert shut.exited_by_themselves == ("x86_64-looking-name",)


def test_aarch64_binary_on_x86_64_fails_to_launch(
    tmp_path: Path, emulators: list[LambdaEmulator], goext: dict[str, Path]
) -> None:
    layer = _layer(tmp_path / "layer", {"goext": goext["arm64"]})
    lam = _emulator(emulators, layers=[layer])  # architecture x86_64: no qemu
    with pytest.raises(LambdaInitError) as err:
        lam.start()
    assert err.value.error_type == "Extension.LaunchError"
    assert "Exec format error" in err.value.message


def test_elf_machine_is_read_from_the_header(goext: dict[str, Path]) -> None:
    assert _sandbox.elf_machine(goext["arm64"]) == _sandbox.EM_AARCH64 == 183
    assert _sandbox.elf_machine(goext["amd64"]) == 62  # EM_X86_64
    assert _sandbox.elf_machine(RECORDER) is None
    assert _sandbox.elf_machine(FUNCTIONS / "missing") is None


def test_missing_qemu_names_the_make_target(
    tmp_path: Path, emulators: list[LambdaEmulator], goext: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = _layer(tmp_path / "layer", {"goext": goext["arm64"]})
    monkeypatch.setattr(_sandbox.shutil, "which", lambda _name: None)
    lam = _emulator(emulators, layers=[layer], architecture="arm64")
    with pytest.raises(FileNotFoundError, match="make qemu"):
        lam.start()


def test_arm64_go_function_on_provided_al2023(tmp_path: Path, emulators: list[LambdaEmulator]) -> None:
    code = tmp_path / "fn"
    code.mkdir()
    go_build(FUNCTIONS / "go", code / "bootstrap", "arm64")
    lam = _emulator(
        emulators, runtime="provided.al2023", handler="bootstrap", code_dir=code, architecture="arm64"
    )
    with lam:
        result = lam.invoke({"lines": 1, "echo": "arm"})
    assert result.status == "success" and result.payload == {"ok": True, "echo": "arm", "runtime": "go"}


def test_bad_sandbox_or_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="extension_sandbox"):
        LambdaEmulator(handler="app.handler", code_dir=CODE, extension_sandbox="docker")
    with pytest.raises(ValueError, match="architecture"):
        LambdaEmulator(handler="app.handler", code_dir=CODE, architecture="aarch64")
