"""Paths and script loading shared by the native build's tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
NATIVE = REPO / "extension" / "native"


def load_script(name: str) -> ModuleType:
    """Import extension/native/<name>.py by path (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_native_{name}", NATIVE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
