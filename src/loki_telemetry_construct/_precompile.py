"""Stage the layer with unchecked-hash ``.pyc`` files, so cold starts skip compiling the extension.

``/opt`` is read-only on Lambda, so a layer without bytecode makes every cold start compile
what the extension imports (milliseconds of CPU, far more wall time on a small function).
CDK local bundling copies the layer tree and compiles it with every Lambda Python interpreter
it can find at synth time: the synthesizing one plus ``python3.X`` on ``PATH``. The pyc are
*unchecked-hash* (PEP 552): the interpreter never compares them with the source, whose mtime
the asset zip does not keep. Which interpreters exist must not change the template, so the
asset hash is computed from the source files only (:func:`source_hash`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

#: Bump when what gets staged changes (e.g. a new optimisation level) so the asset hash does.
FORMAT_TAG = b"loki-telemetry-layer/pyc-unchecked-hash-opt0/v1"

#: Where the layer lands; the pyc record it as their source path (tracebacks, reproducible bytes).
DEPLOYED_ROOT = "/opt"

#: An interpreter that hangs (a broken shim) must not hang ``cdk synth``.
PROBE_TIMEOUT_S = 20.0
COMPILE_TIMEOUT_S = 120.0

_PROBE = (
    "import sys; print(sys.implementation.name, sys.implementation.cache_tag, '%d.%d' % sys.version_info[:2])"
)

# compileall exits 0 even when a file fails unless we check its result.
_COMPILE = (
    "import compileall, py_compile, sys\n"
    "ok = compileall.compile_dir(sys.argv[1], ddir=sys.argv[2], quiet=1, optimize=0, workers=1,\n"
    "    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
    "sys.exit(0 if ok else 1)\n"
)


def is_excluded(rel: Path, excludes: Sequence[str]) -> bool:
    """True if any component of ``rel`` matches one of the ``**/<glob>`` exclude patterns."""
    globs = [p.removeprefix("**/") for p in excludes]
    return any(fnmatch(part, g) for part in rel.parts for g in globs)


def _source_files(root: Path, excludes: Sequence[str]) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not is_excluded((here / d).relative_to(root), excludes))
        out += [here / f for f in filenames if not is_excluded((here / f).relative_to(root), excludes)]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def source_hash(root: Path, excludes: Sequence[str]) -> str:
    """sha256 over the format tag and each source file's path, executable bit and contents."""
    h = hashlib.sha256(FORMAT_TAG)
    for path in _source_files(root, excludes):
        rel = path.relative_to(root).as_posix().encode()
        executable = b"x" if path.stat().st_mode & stat.S_IXUSR else b"-"
        data = path.read_bytes()
        # Length-prefixed so no two different trees can produce the same byte stream.
        h.update(b"%d:%s%s%d:" % (len(rel), rel, executable, len(data)))
        h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Interpreter:
    path: str
    cache_tag: str  # e.g. cpython-312: the pyc file name suffix
    runtime: str  # e.g. python3.12: the Lambda runtime it compiles for


def _probe(path: str) -> Interpreter | None:
    """The interpreter's identity, or None if it does not run (e.g. a pyenv shim with no version)."""
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
    return Interpreter(path=path, cache_tag=parts[1], runtime=f"python{parts[2]}")


def find_interpreters(runtimes: Iterable[str]) -> list[Interpreter]:
    """CPython interpreters for the given Lambda runtimes: ``sys.executable``, then ``PATH``.

    Only those two places: nothing else (pyenv's versions directory, conda...) can be assumed
    on the machine that runs ``cdk synth``. One interpreter per cache tag, the first found.
    """
    wanted = [r for r in dict.fromkeys(runtimes) if re.fullmatch(r"python3\.\d+", r)]
    candidates = [sys.executable] + [p for r in wanted if (p := shutil.which(r)) is not None]
    found: dict[str, Interpreter] = {}
    for path in dict.fromkeys(candidates):
        interp = _probe(path)
        if interp is not None and interp.runtime in wanted and interp.cache_tag not in found:
            found[interp.cache_tag] = interp
    return list(found.values())


@jsii.implements(ILocalBundling)
class PrecompilingBundler:
    """CDK local bundling: copy the layer tree, then compile it with each interpreter found.

    Never needs Docker: ``try_bundle`` always bundles locally. An interpreter that fails to
    compile is skipped and reported in :attr:`problems` (the layer then adds a warning):
    the layer still works, that runtime just compiles at cold start as before.
    """

    def __init__(self, source: Path, excludes: Sequence[str], runtimes: Sequence[str]) -> None:
        self.source = source
        self.excludes = tuple(excludes)
        self.runtimes = tuple(runtimes)
        self.compiled: list[Interpreter] = []
        self.problems: list[str] = []

    # jsii passes the BundlingOptions struct positionally; the typed stub declares keywords.
    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        out = Path(output_dir)
        for path in _source_files(self.source, self.excludes):
            dst = out / path.relative_to(self.source)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst)  # keeps the launcher's 0755
        interpreters = find_interpreters(self.runtimes)
        for interp in interpreters:
            self._compile(interp, out)
        if not self.compiled:
            self.problems.append(
                "no CPython interpreter for "
                + ", ".join(self.runtimes)
                + f" was found (looked at {sys.executable} and python3.X on PATH): the layer ships "
                "no .pyc and each cold start compiles the extension; install one of them, or pass "
                "precompile=False to silence this"
            )
        return True

    def _compile(self, interp: Interpreter, out: Path) -> None:
        try:
            proc = subprocess.run(
                [interp.path, "-I", "-S", "-c", _COMPILE, str(out), DEPLOYED_ROOT],
                capture_output=True,
                text=True,
                timeout=COMPILE_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            failed = proc.returncode != 0
            detail = (proc.stdout + proc.stderr).strip()[-500:]
        except (OSError, subprocess.SubprocessError) as exc:
            failed, detail = True, str(exc)
        if failed:
            # Drop this interpreter's partial output: a half-compiled set is still correct, but
            # a clean "all or none" per runtime is easier to reason about.
            for pyc in out.rglob(f"*.{interp.cache_tag}.pyc"):
                pyc.unlink()
            self.problems.append(
                f"{interp.path} ({interp.runtime}) could not compile the extension: {detail}"
            )
        else:
            self.compiled.append(interp)
