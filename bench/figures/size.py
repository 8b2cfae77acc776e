"""Size: what each layer adds to a function's deployment package (and /opt): the native
binary per architecture, and the Python build's tree (sources plus .pyc for every supported
Python)."""

from __future__ import annotations

from pathlib import Path

from ..context import Context
from ..model import Goal, Measured, Row
from ..stats import Summary

MIB = 1024 * 1024
NATIVE_GOAL = Goal(text="native ≤ 8 MiB", compare="median", threshold=8.0, builds=("native",))


def _tree_mib(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / MIB


class Size:
    name = "size"
    title = "Layer size"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        m = Measured()
        python = Summary.of([_tree_mib(ctx.build("python").layer)])
        for arch in ("x86_64", "arm64"):
            binary = ctx.layers / "native" / arch / "extensions" / "loki-telemetry-extension"
            m.rows.append(Row(key=f"layer_mib_{arch}", label=f"layer contents, {arch}", unit="MiB",
                              values={"python": python, "native": Summary.of([binary.stat().st_size / MIB])},
                              goals=(NATIVE_GOAL,)))
        m.notes.append("Python: every file of the layer tree (one tree serves both architectures); "
                       "native: the static binary, the layer's only file.")
        return m


FIGURE = Size()
