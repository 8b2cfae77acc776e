"""Find, verify and unpack the real Loki binaries (xz files + ``SHA256SUMS``)."""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import tempfile
import threading
from pathlib import Path

VERSIONS = ("2.7.7", "2.9.17", "3.4.6")

#: The repository root (``harness/real_loki/`` is two levels below it).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the xz files are unless ``LOKI_BINARIES_DIR`` says otherwise.
DEFAULT_DIR = REPO_ROOT.parent / "shared" / "loki"
#: Unpacked binaries, one folder per checksum: a changed binary never reuses a stale copy.
CACHE_DIR = REPO_ROOT / ".cache" / "loki"

_unpack_lock = threading.Lock()


class BinaryError(RuntimeError):
    """A binary is missing, or its checksum does not match ``SHA256SUMS``."""


def binaries_dir() -> Path:
    """``$LOKI_BINARIES_DIR`` when set, else ``../shared/loki`` beside the repository."""
    env = os.environ.get("LOKI_BINARIES_DIR")
    return Path(env) if env else DEFAULT_DIR


def _checksums(folder: Path) -> dict[str, str]:
    """``SHA256SUMS`` as {file name: hex digest} (sha256sum's format, text or binary mode)."""
    sums: dict[str, str] = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.strip().partition(" ")
        if digest and name:
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def missing_reason(version: str) -> str:
    """Why `version` cannot run here ("" when its xz file and checksum are present)."""
    folder = binaries_dir()
    xz = folder / f"loki-{version}.xz"
    if not xz.is_file():
        return f"no real Loki {version} binary: {xz} not found (set LOKI_BINARIES_DIR)"
    try:
        sums = _checksums(folder)
    except OSError as exc:
        return f"no checksums for the real Loki binaries: {exc}"
    if f"loki-{version}" not in sums:
        return f"{folder / 'SHA256SUMS'} has no line for loki-{version}"
    return ""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def binary(version: str) -> Path:
    """The unpacked, verified executable for `version` (unpacked on first use, ~3 s per version).

    Raises BinaryError when it is missing or its checksum does not match.
    """
    if version not in VERSIONS:
        raise BinaryError(f"unknown Loki version {version!r}; known: {', '.join(VERSIONS)}")
    reason = missing_reason(version)
    if reason:
        raise BinaryError(reason)
    folder = binaries_dir()
    digest = _checksums(folder)[f"loki-{version}"]
    target = CACHE_DIR / digest / f"loki-{version}"
    # The folder is named after the checksum and the file appears only once verified
    # (rename is atomic), so an existing file is trusted without hashing ~100 MB again.
    if target.is_file():
        return target
    with _unpack_lock:
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".loki-{version}-", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, lzma.open(folder / f"loki-{version}.xz") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            actual = _sha256(tmp)
            if actual != digest:
                raise BinaryError(
                    f"loki-{version} unpacked from {folder} has sha256 {actual}, SHA256SUMS says {digest}"
                )
            tmp.chmod(0o755)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    return target
