"""Fixtures for the extension's unit tests: stdlib + pytest only (run on Python 3.10-3.13)."""

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
