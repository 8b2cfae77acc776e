"""The extension's own diagnostics: one marker-prefixed line on stderr each.

Lambda turns the extension's stderr into ``extension`` telemetry records; the marker
lets ``records`` drop them again so a diagnostic is never shipped back in a loop.
"""

from __future__ import annotations

import sys

MARKER = "[loki-telemetry-extension]"

_said: set[str] = set()


def warn(message: str) -> None:
    """Write one diagnostic line; never raises (a closed stderr must not kill us)."""
    try:
        sys.stderr.write(f"{MARKER} {message}\n")
        sys.stderr.flush()
    except Exception:
        pass


def warn_once(key: str, message: str) -> None:
    """Like :func:`warn`, but only the first time ``key`` is seen (no log storms)."""
    if key in _said:
        return
    _said.add(key)
    warn(message)
