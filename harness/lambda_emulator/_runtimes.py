"""Lambda runtimes the emulator can run: how each one is started and what it is told.

- ``python3.X``: awslambdaric (from PyPI) under the chosen interpreter, as Lambda's
  Python runtime does.
- ``nodejsNN.x``: ``node_runtime.mjs`` (next to this file) under a Node binary.
- ``provided.al2023`` / ``provided.al2``: ``<code_dir>/bootstrap`` executed directly.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

PYTHON_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
NODE_RUNTIMES = ("nodejs20.x", "nodejs22.x", "nodejs24.x")
PROVIDED_RUNTIMES = ("provided.al2023", "provided.al2")
RUNTIMES = PYTHON_RUNTIMES + NODE_RUNTIMES + PROVIDED_RUNTIMES

NODE_CLIENT = Path(__file__).with_name("node_runtime.mjs")
#: The project's own Node (22, from npm) first, then whatever `node` is on PATH.
_REPO_NODE = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "node"


@dataclass(frozen=True)
class Runtime:
    name: str
    family: str  # python | nodejs | provided

    @property
    def execution_env(self) -> str | None:
        """AWS_EXECUTION_ENV; Lambda sets none for OS-only runtimes."""
        return None if self.family == "provided" else f"AWS_Lambda_{self.name}"

    @property
    def runtime_version(self) -> str:
        """platform.initStart runtimeVersion, e.g. ``nodejs:22.emulator``."""
        if self.family == "python":
            return f"python:{self.name[len('python') :]}.emulator"
        if self.family == "nodejs":
            return f"nodejs:{self.name[len('nodejs') :].rstrip('.x')}.emulator"
        return f"provided:{self.name.split('.', 1)[1]}.emulator"


def resolve(name: str | None, python_version: tuple[int, int]) -> Runtime:
    """The runtime by Lambda name; None = the Python runtime of the given interpreter."""
    if name is None:
        name = f"python{python_version[0]}.{python_version[1]}"
        return Runtime(name, "python")
    if name not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {name!r}")
    family = "python" if name.startswith("python") else "nodejs" if name.startswith("nodejs") else "provided"
    return Runtime(name, family)


def find_node(explicit: str | os.PathLike[str] | None) -> str:
    if explicit is not None:
        return str(explicit)
    if _REPO_NODE.exists():
        return str(_REPO_NODE)
    found = shutil.which("node")
    if found is None:
        raise FileNotFoundError(
            "no `node` binary for a nodejs runtime: run `make setup` (installs Node 22 into "
            "node_modules/.bin) or pass node_binary=..."
        )
    return found


def node_path(opt: Path, runtime: Runtime, code_dir: Path) -> str:
    """NODE_PATH as Lambda sets it: the layer folders, then the function's code."""
    major = runtime.name[len("nodejs") :].rstrip(".x")
    return os.pathsep.join(
        [
            str(opt / "nodejs" / f"node{major}" / "node_modules"),
            str(opt / "nodejs" / "node_modules"),
            str(code_dir),
        ]
    )


def python_interpreter_is_current(path: str) -> bool:
    return Path(path).resolve() == Path(sys.executable).resolve()
