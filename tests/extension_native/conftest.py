"""Fixtures for the native (Go) build's tests: the binaries are built once per session by
extension/native/build.py, the only way anything builds them."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
NATIVE = REPO / "extension" / "native"
# The in-test fakes of the Lambda APIs and Loki are shared with the Python build's tests.
sys.path.insert(0, str(REPO / "tests" / "extension"))

from ext_fakes import FakeLambda, FakeLoki  # noqa: E402


def load_script(name: str) -> ModuleType:
    """Import extension/native/<name>.py by path (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_native_{name}", NATIVE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_mod() -> ModuleType:
    return load_script("build")


@pytest.fixture(scope="session")
def binaries(build_mod: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("native")
    built: dict[str, Path] = build_mod.build(out)
    return built


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    server = FakeLoki()
    yield server
    server.close()


@pytest.fixture
def fake_lambda() -> Iterator[FakeLambda]:
    server = FakeLambda()
    yield server
    server.close()
