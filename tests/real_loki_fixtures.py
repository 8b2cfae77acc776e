"""Pytest plugin: real Loki servers for the tests, started once per session.

Loaded by ``tests/conftest.py`` (``pytest_plugins``). Use it from any test folder:

```python
import pytest
from harness.real_loki import RealLoki, VERSIONS

@pytest.mark.parametrize("version", VERSIONS)
def test_something(real_loki: dict[str, RealLoki], version: str) -> None:
    loki = real_loki[version]           # started and ready; push to loki.push_url
```

``real_loki`` starts every version whose binary is present, in parallel (one start-up,
15-20 s, for all three), the first time a test asks for it, and stops them at the end of
the session. A test for a version whose binary is absent is skipped with the reason: the
only skip allowed in this suite, since CI has the binaries in ``../shared/loki``. The session
header says once which versions are missing.

Tests that stop and restart a server (outages) should leave it running when they finish.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.real_loki import VERSIONS, RealLoki, available, missing_reason, start_all


def missing_line() -> str:
    """One line naming the versions that cannot run here ("" when all can)."""
    missing = [v for v in VERSIONS if missing_reason(v)]
    if not missing:
        return ""
    return f"real Loki tests skipped for {', '.join(missing)}: {missing_reason(missing[0])}"


def pytest_report_header(config: pytest.Config) -> str | None:
    return missing_line() or None


@pytest.fixture(scope="session")
def real_loki() -> Iterator[dict[str, RealLoki]]:
    """{version: RealLoki} for every version whose binary is present, all started and ready."""
    if not available():
        pytest.skip(missing_line())
    servers = start_all()
    try:
        yield servers
    finally:
        for server in servers.values():
            server.close()  # SIGKILL: the data is thrown away, nothing to flush


@pytest.fixture
def real_loki_version(real_loki: dict[str, RealLoki], request: pytest.FixtureRequest) -> RealLoki:
    """The running server for the test's ``version`` parameter (skipped when its binary is absent)."""
    version: str = request.param if hasattr(request, "param") else request.getfixturevalue("version")
    if version not in real_loki:
        pytest.skip(missing_reason(version))
    server = real_loki[version]
    if not server.running:
        # A previous test stopped it (an outage) and failed before restarting it.
        server.start()
    return server
