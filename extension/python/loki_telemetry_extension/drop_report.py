"""The drop report: its text, written and read in this one place.

The extension writes ``log entries lost so far: buffer_full=N, rejected_by_loki=N,
shutdown_deadline=N, lambda_logs_dropped=N`` (stderr, and as a Loki line in the
``type="extension"`` stream) whenever a counter moved, and ``entries lost in this
environment: …`` at SHUTDOWN. Tests and benchmarks import :func:`parse_drop_report`.
"""

from __future__ import annotations

from .envvars import DROP_REASONS

SO_FAR = "log entries lost so far: "
AT_SHUTDOWN = "entries lost in this environment: "


def counts_text(drops: dict[str, int]) -> str:
    """``buffer_full=N, rejected_by_loki=N, …`` in DROP_REASONS order."""
    return ", ".join(f"{k}={drops.get(k, 0)}" for k in DROP_REASONS)


def so_far(drops: dict[str, int]) -> str:
    return SO_FAR + counts_text(drops)


def at_shutdown(drops: dict[str, int]) -> str:
    return AT_SHUTDOWN + counts_text(drops)


def parse_drop_report(line: str) -> dict[str, int] | None:
    """The counters of a drop-report line (either kind, any prefix before it), else None."""
    for head in (SO_FAR, AT_SHUTDOWN):
        i = line.find(head)
        if i >= 0:
            break
    else:
        return None
    out: dict[str, int] = {}
    for part in line[i + len(head):].strip().split(", "):
        name, sep, value = part.partition("=")
        if not sep or name not in DROP_REASONS or not value.isdigit():
            return None
        out[name] = int(value)
    return out if list(out) == list(DROP_REASONS) else None
