"""Reading a process's CPU time and memory from /proc (Linux only, like Lambda)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + sys CPU time of ``pid`` (its own threads, not its children), in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def peak_rss_mib(pid: int) -> float:
    return status_kib(pid, "VmHWM") / 1024.0


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024.0


def python_children(pid: int) -> list[int]:
    """Direct children of ``pid`` (the sh launcher execs python, so usually it *is* the pid)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids]
