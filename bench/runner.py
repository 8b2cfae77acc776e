"""Run the figures and assemble one results document."""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .context import Build, Context
from .figure import load
from .machine import describe
from .model import SCHEMA, FigureResult


def _utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def run_figure(name: str, ctx: Context) -> FigureResult:
    t0 = time.monotonic()
    result = FigureResult(name=name, title=name)
    try:
        figure = load(name)
        result.title = figure.title
        ctx.log(f"== {name}: {figure.title}")
        result.measured = figure.measure(ctx, ctx.smoke)
    except Exception as exc:  # a broken figure is reported, the others still run
        result.status = "error"
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
        ctx.log(f"!! {name} failed: {type(exc).__name__}: {exc}")
    result.duration_s = time.monotonic() - t0
    ctx.log(f"   {name} done in {result.duration_s:.1f}s")
    return result


def run(
    names: Sequence[str],
    *,
    smoke: bool,
    extension_python: str,
    builds: tuple[Build, ...],
    command: str,
    repo: Path,
) -> dict[str, Any]:
    started = _utc()
    t0 = time.monotonic()
    machine = describe(repo, extension_python)
    with tempfile.TemporaryDirectory(prefix="loki-bench-") as tmp:
        ctx = Context(smoke=smoke, workdir=Path(tmp), extension_python=extension_python, builds=builds,
                      repo=repo)
        figures = [run_figure(n, ctx).as_dict() for n in names]
    return {
        "schema": SCHEMA,
        "mode": "smoke" if smoke else "full",
        "command": command,
        "started_utc": started,
        "finished_utc": _utc(),
        "duration_s": time.monotonic() - t0,
        "machine": machine,
        "builds": [{"name": b.name, "layer": str(b.layer.relative_to(repo) if b.layer.is_relative_to(repo)
                                                 else b.layer), "architecture": b.architecture}
                   for b in builds],
        "figures": figures,
    }
