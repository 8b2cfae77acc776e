"""Benchmarks: ``python -m bench [--smoke] [--only NAME]``, both builds of the extension side by side.

``bench/figures/`` holds one module per named figure, each exposing ``FIGURE`` (the
:class:`bench.figure.Figure` protocol: ``name``, ``title``, ``measure(ctx, smoke) -> Measured``).
Everything else here is shared: the run context and builds (``context``), the emulator
session (``session``), the benchmark function (``workload``), statistics (``stats``), the
result schema (``model``) and its rendering (``report``). See docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The extension's own text contracts (the drop report) are read with its own parser, not a copy.
_EXTENSION = str(Path(__file__).resolve().parent.parent / "extension" / "python")
if _EXTENSION not in sys.path:
    sys.path.append(_EXTENSION)
