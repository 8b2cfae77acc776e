"""Fixtures for the native (Go) build's tests: the binaries are built once per session by
extension/native/build.py, the only way anything builds them."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from .support import REPO, load_script

# The in-test fakes of the Lambda APIs and Loki are shared with the Python build's tests.
sys.path.insert(0, str(REPO / "tests" / "extension"))

from ext_fixtures import fake_lambda, loki

__all__ = ["binaries", "build_mod", "fake_lambda", "loki"]


@pytest.fixture(scope="session")
def build_mod() -> ModuleType:
    return load_script("build")


@pytest.fixture(scope="session")
def binaries(build_mod: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("native")
    built: dict[str, Path] = build_mod.build(out)
    return built
