"""The fake Loki and fake Lambda APIs as pytest fixtures, shared by the Python build's and the
native build's unit tests (each conftest imports them, which registers them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ext_fakes import FakeLambda, FakeLoki


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
