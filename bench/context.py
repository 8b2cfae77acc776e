"""What every figure gets: run mode, paths, the two builds' layer trees, and a progress logger."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The layer trees the construct stages (``make layers``); the bench measures exactly these.
LAYERS = REPO / "build" / "layers"
EXTENSION_NAME = "loki-telemetry-extension"


@dataclass(frozen=True)
class Build:
    """One build of the extension as a layer root (``<root>/extensions/loki-telemetry-extension``)."""

    name: str  # "python" | "native"
    layer: Path
    architecture: str = "x86_64"

    @property
    def extension(self) -> Path:
        return self.layer / "extensions" / EXTENSION_NAME


@dataclass(frozen=True)
class Context:
    smoke: bool
    workdir: Path
    #: The interpreter the Python build runs on (what the launcher finds as ``python3``).
    extension_python: str
    builds: tuple[Build, ...]
    repo: Path = REPO
    layers: Path = LAYERS
    started: float = field(default_factory=time.monotonic)

    def pick(self, smoke: int, full: int) -> int:
        """A size or repeat count: small in smoke mode (proves the harness), large for real figures."""
        return smoke if self.smoke else full

    def build(self, name: str) -> Build:
        return next(b for b in self.builds if b.name == name)

    def log(self, msg: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[bench {elapsed:7.1f}s] {msg}", file=sys.stderr, flush=True)


def ensure_layers(layers: Path = LAYERS) -> tuple[Build, ...]:
    """Bring ``build/layers`` up to date (what ``make layers`` does: only stale trees are rebuilt)
    and return the builds measured on this machine: the Python tree and the native x86_64 tree."""
    sys.path.insert(0, str(REPO))
    try:
        import hatch_build
    finally:
        sys.path.remove(str(REPO))
    hatch_build.build_layers(layers)
    return (Build("python", layers / "python"), Build("native", layers / "native" / "x86_64"))
