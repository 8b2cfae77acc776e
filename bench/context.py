"""What every figure module gets: run mode, paths, and a progress logger."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAYER_DIR = REPO / "extension" / "python"


@dataclass(frozen=True)
class Context:
    smoke: bool
    workdir: Path
    extension_python: str
    repo: Path = REPO
    layer_dir: Path = LAYER_DIR
    started: float = field(default_factory=time.monotonic)

    def pick(self, smoke: int, full: int) -> int:
        """A size or repeat count: small in smoke mode (CI proves the harness), large for real figures."""
        return smoke if self.smoke else full

    def log(self, msg: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[bench {elapsed:7.1f}s] {msg}", file=sys.stderr, flush=True)
