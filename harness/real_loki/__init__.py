"""Real Grafana Loki servers (2.7.7, 2.9.17, 3.4.6) on loopback, for tests.

The binaries are xz files in ``../shared/loki/`` (relative to the repository root) or in
``$LOKI_BINARIES_DIR``. They are checked against that folder's ``SHA256SUMS`` and unpacked
once into ``.cache/loki/<sha256>/``, so a later run reuses them without unpacking again.

```python
from harness.real_loki import RealLoki, available

for version in available():                 # the versions whose binary is present
    with RealLoki(version) as loki:         # start-up takes 15-20 s: start each once per session
        push_to(loki.push_url)
        entries = loki.entries('{job="x"}')  # StoredEntry, the receiver's shape
```

Start several versions at once with :func:`start_all` (one thread each): start-up dominates.
Each server runs with the version's defaults (limits, structured metadata allowed on 3.x,
disallowed on 2.9, unknown on 2.7), with filesystem storage in a private temporary folder,
and ``auth_enabled: false`` (every push lands in tenant ``fake``).
"""

from __future__ import annotations

from ._binaries import VERSIONS, BinaryError, binaries_dir, binary, missing_reason
from ._server import QueryError, RealLoki, available, start_all

__all__ = [
    "VERSIONS",
    "BinaryError",
    "QueryError",
    "RealLoki",
    "available",
    "binaries_dir",
    "binary",
    "missing_reason",
    "start_all",
]
