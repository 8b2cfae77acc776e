"""The env-var contract shared with the extension, re-exported for the CDK side.

``envvars.py`` is defined once, in the Python build of the extension. It is loaded from
there by file path: ``extension/python`` in a checkout, the shipped Python layer tree in a
wheel. So the construct writes exactly the names the extension reads.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from .layer import LAYER_ROOT

_NAME = "loki_telemetry_construct.envvars"


def _load() -> ModuleType:
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    path = LAYER_ROOT / "loki_telemetry_extension" / "envvars.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only if the file is missing
        raise ImportError(f"the extension's env-var contract is missing: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # before exec: dataclasses and typing resolve the module by name
    spec.loader.exec_module(module)
    return module


envvars = _load()

__all__ = ["envvars"]
