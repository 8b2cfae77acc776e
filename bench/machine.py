"""A description of the machine the figures came from (they mean little without it)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in os.getloadavg()]
    except OSError:
        return []


def _git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = out.stdout.strip() or "unknown"
        return commit + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe(repo: Path, extension_python: str) -> dict[str, Any]:
    """Hardware, OS, interpreters and load at the time of the run."""
    try:
        ext_py = subprocess.run(
            [extension_python, "-I", "-S", "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        ext_py = "unknown"
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "mem_mib": _mem_total_mib(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python_bench": platform.python_version(),
        "python_extension": ext_py,
        "extension_python_path": extension_python,
        "loadavg_at_start": _loadavg(),
        "git_commit": _git_commit(repo),
    }


def one_line(m: dict[str, Any]) -> str:
    """The machine in one sentence for the Markdown report."""
    load = ", ".join(f"{x:.2f}" for x in m.get("loadavg_at_start", []))
    return (
        f"{m['cpu']}, {m['cpus']} CPUs, {m['mem_mib']} MiB RAM, {m['os']} ({m['machine']}); "
        f"extension on Python {m['python_extension']}, bench on Python {m['python_bench']}; "
        f"load average at start {load}; commit {m['git_commit']}"
    )
