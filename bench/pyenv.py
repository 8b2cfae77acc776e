"""Run the extension's launcher the way Lambda does, on a chosen interpreter."""

from __future__ import annotations

import os
from pathlib import Path

LAUNCHER_NAME = "loki-telemetry-extension"


def python_shim_dir(workdir: Path, python: str) -> Path:
    """A directory whose ``python3`` is ``python``: put it first on PATH so the launcher's
    ``python3`` fallback (there is no /var/lang/bin/python3 here) picks the interpreter we measure."""
    shim = workdir / "pyshim"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "python3"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(python)
    return shim


def launcher(layer_dir: Path) -> Path:
    return layer_dir / "extensions" / LAUNCHER_NAME


def base_env(shim: Path, **extra: str) -> dict[str, str]:
    """A clean Lambda-like environment (no PYTHONPATH or venv leaking from the bench)."""
    env = {
        "PATH": f"{shim}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    }
    env.update(extra)
    return env
