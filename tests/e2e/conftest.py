"""Fixtures for the end-to-end tests: the real extension, in both of its builds, run by
the local Lambda emulator against the local Loki receiver, and moto in server mode for
secrets. Every server binds 127.0.0.1 and is torn down.

Every test that starts an emulator runs once per build (``[python]``, ``[native]``);
tests marked ``arm64`` also run the arm64 native binary under qemu (``[native-arm64]``).
A test that cannot apply to a build is deselected by a marker that says why, never
skipped silently.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness._shared.moto import MotoServer
from harness.lambda_emulator import LambdaEmulator
from harness.loki_receiver import LokiReceiver
from tests.e2e.support import (
    BUILDS,
    FUNCTIONS_DIR,
    HANDLER,
    LAYER_DIR,
    SELECTED_BUILDS,
    Build,
    native_layers_dir,
    native_missing_reason,
)

MakeEmulator = Callable[..., LambdaEmulator]

HERE = Path(__file__).parent
QEMU = "qemu-aarch64-static"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "python_build_only(reason): cannot apply to the native build (deselected there, reason given)",
    )
    config.addinivalue_line(
        "markers",
        "native_build_only(reason): cannot apply to the Python build (deselected there, reason given)",
    )
    config.addinivalue_line(
        "markers", "arm64: also run the arm64 native binary under qemu-user ([native-arm64])"
    )
    config.addinivalue_line("markers", "real_loki: runs against real Grafana Loki servers")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The ``build`` parameter: every test using an emulator runs once per build."""
    if "build" not in metafunc.fixturenames:
        return
    ids = ["python", "native"]
    if metafunc.definition.get_closest_marker("arm64") is not None:
        ids.append("native-arm64")
    metafunc.parametrize("build", [BUILDS[b] for b in ids], ids=ids, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything in this folder is an end-to-end test; deselect (not skip) what a build
    cannot run, each kind for one stated reason."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    native_missing = native_missing_reason()
    for item in items:
        if HERE not in Path(str(item.fspath)).parents:
            keep.append(item)
            continue
        item.add_marker(pytest.mark.e2e)
        callspec = getattr(item, "callspec", None)
        build = callspec.params.get("build") if callspec is not None else None
        if isinstance(build, Build) and build.id not in SELECTED_BUILDS:
            dropped.append(item)  # E2E_BUILDS chose other builds for this run
            continue
        native = isinstance(build, Build) and build.native
        if native and (native_missing or item.get_closest_marker("python_build_only") is not None):
            dropped.append(item)
            continue
        if isinstance(build, Build) and not native and item.get_closest_marker("native_build_only"):
            dropped.append(item)
            continue
        if "real_server" in getattr(item, "fixturenames", ()):
            version = callspec.params.get("version") if callspec is not None else None
            if version is not None and _real_loki_missing(version):
                dropped.append(item)  # test_real_loki_binaries_present says why, once
                continue
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _real_loki_missing(version: str) -> str:
    from harness.real_loki import missing_reason

    return missing_reason(version)


# --- The layer of each build ------------------------------------------------------------
@pytest.fixture(scope="session")
def native_dir() -> Path:
    """The native build's output for every architecture, built once per source digest."""
    return native_layers_dir()


@pytest.fixture(scope="session")
def qemu() -> str:
    path = shutil.which(QEMU)
    if path is None:
        pytest.fail(f"{QEMU} not found: `make qemu` installs qemu-user-static (arm64 runs need it)")
    return path


def layer_for(build: Build, request: pytest.FixtureRequest) -> Path:
    if not build.native:
        return LAYER_DIR
    if build.architecture == "arm64":
        request.getfixturevalue("qemu")
    return Path(request.getfixturevalue("native_dir")) / build.architecture


def emulator_kwargs(build: Build) -> dict[str, Any]:
    """How the emulator runs this build: on its architecture (arm64 under qemu-user), and the
    native binary in a sandbox where no Python interpreter is reachable (proving it needs none)."""
    kwargs: dict[str, Any] = {"architecture": build.architecture}
    if build.native:
        kwargs["extension_sandbox"] = "no-python"
    return kwargs


@pytest.fixture
def layer(build: Build, request: pytest.FixtureRequest) -> Path:
    """The layer root of the build under test."""
    return layer_for(build, request)


@pytest.fixture
def receiver() -> Iterator[LokiReceiver]:
    """A fresh Loki 3.x-like receiver per test: faults and counts never leak between tests."""
    with LokiReceiver() as r:
        yield r


@pytest.fixture
def make_emulator(build: Build, layer: Path) -> Iterator[MakeEmulator]:
    """Start emulators running app.handler (or the code given) with the layer of the build
    under test; all are shut down (and their processes reaped) at teardown, also when the
    test fails."""
    with ExitStack() as stack:

        def make(env: dict[str, str], **kwargs: Any) -> LambdaEmulator:
            kwargs.setdefault("timeout_s", 10.0)
            kwargs.setdefault("handler", HANDLER)
            kwargs.setdefault("code_dir", FUNCTIONS_DIR)
            for key, value in emulator_kwargs(build).items():
                kwargs.setdefault(key, value)
            emulator = LambdaEmulator(layers=(layer,), env=env, **kwargs)
            return stack.enter_context(emulator)

        yield make


# --- moto in server mode --------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server mode on 127.0.0.1 (a subprocess), for Secrets Manager and SSM."""
    try:
        server = MotoServer().start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


# --- Real Loki (2.7.7, 2.9.17, 3.4.6) ---------------------------------------------------
@pytest.fixture
def real_server(real_loki_version: Any) -> Any:
    """The running real Loki of the test's ``version`` parameter. The servers are the shared
    session fixture's (``tests/real_loki_fixtures.py``: every version started once, in
    parallel, ~16 s, then reused by every folder's tests; with pytest-xdist once per worker)."""
    return real_loki_version
