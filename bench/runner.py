"""Run the figure modules and assemble one results document."""

from __future__ import annotations

import importlib
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from .context import Context
from .machine import describe
from .model import SCHEMA, FigureResult

#: Figure modules in report order (issue 5's numbering). Each has NAME, TITLE and run(ctx).
FIGURES = (
    "init_overhead",
    "invoke_overhead",
    "cpu_per_line",
    "memory",
    "latency",
    "throughput",
    "synth_scaling",
    "faults",
)


def _load(name: str) -> ModuleType:
    # Imported lazily: `--only synth_scaling` must not need the harness, and vice versa.
    return importlib.import_module(f"bench.{name}")


def _utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def run_figure(name: str, ctx: Context) -> FigureResult:
    t0 = time.monotonic()
    title = name
    try:
        mod = _load(name)
        title = mod.TITLE
        ctx.log(f"== {name}: {mod.TITLE}")
        result: FigureResult = mod.run(ctx)
    except Exception as exc:  # a broken figure is reported, the others still run
        result = FigureResult(
            name=name,
            title=title,
            status="error",
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}",
        )
        ctx.log(f"!! {name} failed: {type(exc).__name__}: {exc}")
    result.duration_s = time.monotonic() - t0
    ctx.log(f"   {name} done in {result.duration_s:.1f}s")
    return result


def run(
    names: Sequence[str], *, smoke: bool, extension_python: str, command: str, repo: Path
) -> dict[str, Any]:
    started = _utc()
    t0 = time.monotonic()
    machine = describe(repo, extension_python)
    with tempfile.TemporaryDirectory(prefix="loki-bench-") as tmp:
        ctx = Context(smoke=smoke, workdir=Path(tmp), extension_python=extension_python, repo=repo)
        figures = [run_figure(n, ctx).as_dict() for n in names]
    return {
        "schema": SCHEMA,
        "mode": "smoke" if smoke else "full",
        "command": command,
        "started_utc": started,
        "finished_utc": _utc(),
        "duration_s": time.monotonic() - t0,
        "machine": machine,
        "figures": figures,
    }
