"""The ``Figure`` protocol: what a figure module provides, and the registry in report order."""

from __future__ import annotations

import importlib
from typing import Protocol

from .context import Context
from .model import Measured


class Figure(Protocol):
    """A named figure: ``measure`` runs it for both builds and returns its rows.

    ``smoke`` asks for the smallest sizes that still exercise every part of the harness."""

    name: str
    title: str

    def measure(self, ctx: Context, smoke: bool) -> Measured: ...


#: Figure names in report order; each is ``bench/figures/<name>.py`` exposing ``FIGURE``.
NAMES = (
    "init",
    "invoke_overhead",
    "cpu_per_line",
    "memory",
    "latency",
    "throughput",
    "size",
    "synth_scaling",
    "reliability",
    "managed_instances",
)


def load(name: str) -> Figure:
    # Imported lazily: `--only synth_scaling` must not need the emulator, and vice versa.
    figure: Figure = importlib.import_module(f"bench.figures.{name}").FIGURE
    return figure
