"""Layers: merge layer roots into one /opt-like directory, find external extensions."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_SKIP_DIRS = {"__pycache__"}


def merge(layers: Iterable[str | os.PathLike[str]], opt: Path) -> None:
    """Symlink every file of each layer into ``opt``, later layers winning, as Lambda
    extracts layers into /opt in order. Files are linked one by one (not whole
    directories) so two layers can both contribute to ``extensions/`` or ``python/``.
    """
    for layer in layers:
        root = Path(layer).resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"layer directory {root} does not exist")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
            rel = Path(dirpath).relative_to(root)
            (opt / rel).mkdir(parents=True, exist_ok=True)
            for name in filenames:
                link = opt / rel / name
                if link.is_symlink() or link.exists():
                    link.unlink()
                link.symlink_to(Path(dirpath) / name)


def external_extensions(opt: Path) -> list[Path]:
    """Executable regular files in ``<opt>/extensions``, in name order."""
    ext_dir = opt / "extensions"
    if not ext_dir.is_dir():
        return []
    return sorted(p for p in ext_dir.iterdir() if p.is_file() and os.access(p, os.X_OK))
