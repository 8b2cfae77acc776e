"""``LokiTelemetryLayer``: the extension packaged as a Lambda layer.

The layer contents are built once, before any synth (``make layers`` in a checkout; the wheel
build for an installed package, which ships them in ``loki_telemetry_construct/_layers/``).
Synth only stages a tree: it compiles and runs nothing, so the asset, and with it the template,
is a pure function of the library version, the same on every machine.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

#: What an installed wheel ships: ``python.zip``, ``native/<arch>/`` and ``manifest.json``.
PACKAGED_LAYERS = Path(__file__).resolve().parent / "_layers"
#: A checkout: ``src/loki_telemetry_construct`` sits two levels below the repository root.
CHECKOUT = Path(__file__).resolve().parents[2]
#: Where ``make layers`` puts the trees in a checkout (gitignored).
CHECKOUT_LAYERS = CHECKOUT / "build" / "layers"

#: The wheel ships the Python tree zipped: pip compiles every ``.py`` it installs, and would
#: overwrite the installing interpreter's unchecked-hash ``.pyc`` with a timestamp-based one.
PACKAGED_PYTHON_ZIP = PACKAGED_LAYERS / "python.zip"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loki-telemetry-construct"


def _matches(archive: zipfile.ZipFile, folder: Path) -> bool:
    """True if ``folder`` holds exactly the archive's files, bytes and modes."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if files != sorted(i.filename for i in archive.infolist() if not i.is_dir()):
        return False
    for info in archive.infolist():
        path = folder / info.filename
        mode = stat.S_IMODE(info.external_attr >> 16) or 0o644
        if stat.S_IMODE(path.stat().st_mode) != mode or path.read_bytes() != archive.read(info):
            return False
    return True


def _extract(archive: zipfile.ZipFile, dest: Path) -> None:
    for info in archive.infolist():
        target = (dest / info.filename).resolve()
        if dest.resolve() not in target.parents or info.is_dir():
            continue  # our archives hold regular files only, all below the root
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(info))
        # zipfile does not restore modes; Lambda only starts executable extensions.
        target.chmod(stat.S_IMODE(info.external_attr >> 16) or 0o644)


@functools.lru_cache(maxsize=4)
def _unpacked(archive_path: Path) -> Path:
    """The zipped tree as a folder, unpacked once per machine and library version.

    Content-addressed under the user's cache folder and never deleted: the staged asset may be
    read after the app exits (``cdk synth --no-staging`` points the assembly at it). Checked
    against the archive on first use in each process, so an altered copy is replaced, not staged.
    """
    data = archive_path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        dest = _cache_home() / f"{archive_path.stem}-{hashlib.sha256(data).hexdigest()[:24]}"
        if dest.is_dir() and _matches(archive, dest):
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        except OSError:  # no writable cache folder (e.g. a read-only home): a private copy
            tmp = Path(tempfile.mkdtemp(prefix="loki-telemetry-layer-"))
            _extract(archive, tmp)
            return tmp
        _extract(archive, tmp)
        if dest.is_dir():
            shutil.rmtree(dest, ignore_errors=True)  # altered or half-written: replaced whole
        try:
            os.rename(tmp, dest)  # atomic: a concurrent synth sees all of it or none
        except OSError:  # another process got there first
            if not (dest.is_dir() and _matches(archive, dest)):
                return tmp  # keep this private copy rather than stage something else
            shutil.rmtree(tmp, ignore_errors=True)
        return dest


def _python_root() -> Path:
    if PACKAGED_PYTHON_ZIP.is_file():
        return _unpacked(PACKAGED_PYTHON_ZIP)
    return CHECKOUT / "extension" / "python"


#: The Python build's source root: ``extensions/<launcher>`` plus the package beside it. In a
#: checkout the sources themselves; in a wheel the shipped tree (same files plus ``.pyc``).
LAYER_ROOT = _python_root()

EXTENSION_FILE = "extensions/loki-telemetry-extension"

#: The Lambda runtimes the Python build is compiled and tested for: it runs on the function's
#: own interpreter, with a ``.pyc`` set for each of these.
PYTHON_BUILD_RUNTIMES: tuple[str, ...] = ("python3.10", "python3.11", "python3.12", "python3.13")
SUPPORTED_RUNTIMES: tuple[lambda_.Runtime, ...] = (
    lambda_.Runtime.PYTHON_3_10,
    lambda_.Runtime.PYTHON_3_11,
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
)
SUPPORTED_RUNTIME_NAMES = frozenset(PYTHON_BUILD_RUNTIMES)

#: Pure Python: the same bytes run on both. The native build has one layer per architecture.
SUPPORTED_ARCHITECTURES: tuple[lambda_.Architecture, ...] = (
    lambda_.Architecture.X86_64,
    lambda_.Architecture.ARM_64,
)
NATIVE_ARCHITECTURES = SUPPORTED_ARCHITECTURES

#: CloudFormation rejects a layer with more compatible runtimes than this.
MAX_COMPATIBLE_RUNTIMES = 15

LayerBuild = Literal["python", "native"]
LAYER_BUILDS: tuple[LayerBuild, ...] = ("python", "native")

LICENSE = "Apache-2.0"

#: How to get the trees, for every message that finds them missing or stale.
HOW_TO_BUILD = (
    "run `make layers` in the checkout (or `python hatch_build.py --out build/layers`), "
    "or install the built wheel (`pip install loki_telemetry_construct-*.whl`), which ships them"
)


class LayerNotBuiltError(RuntimeError):
    """The layer's contents are missing, incomplete or stale; the message says how to build them."""


def _version() -> str:
    try:
        return metadata.version("loki-telemetry-construct")
    except metadata.PackageNotFoundError:  # running from a plain checkout
        return "0+unknown"


def layers_root() -> Path:
    """The folder holding the built trees: the wheel's ``_layers``, else the checkout's."""
    if PACKAGED_LAYERS.is_dir():
        return PACKAGED_LAYERS
    if (CHECKOUT / "hatch_build.py").is_file():
        return CHECKOUT_LAYERS
    raise LayerNotBuiltError(
        f"this installation of loki-telemetry-construct has no built layers ({PACKAGED_LAYERS} is "
        f"missing): {HOW_TO_BUILD}"
    )


@functools.lru_cache(maxsize=8)
def _checkout_digests(checkout: Path) -> dict[str, str]:
    """The current source digests, computed the way ``hatch_build.py`` records them (reads only)."""
    spec = importlib.util.spec_from_file_location("_loki_layer_build", checkout / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    digests: dict[str, str] = module.source_digests()
    return digests


def _fresh(root: Path, tree: str) -> None:
    """In a checkout, refuse a tree built from other sources than the ones checked out."""
    if root != CHECKOUT_LAYERS:
        return  # a wheel's trees are the ones it was built with, by definition
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        recorded = manifest[tree]["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if recorded != _checkout_digests(CHECKOUT)[tree]:
        raise LayerNotBuiltError(
            f"the {tree} layer in {root} was not built from the sources checked out here "
            f"(extension/{tree} or hatch_build.py changed, or it was never built): {HOW_TO_BUILD}"
        )


def _check_executable(tree: Path) -> None:
    path = tree / EXTENSION_FILE
    if not path.is_file():
        raise LayerNotBuiltError(f"{path} is missing: {HOW_TO_BUILD}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o555 != 0o555:
        # Lambda would not start it, and say nothing: fail here instead of staging it silently.
        raise LayerNotBuiltError(
            f"{path} has mode {mode:04o}, but Lambda only starts extensions that are executable "
            f"(0755); the tree was altered after it was built: {HOW_TO_BUILD}"
        )


def layer_tree(build: LayerBuild, architecture: lambda_.Architecture | None = None) -> Path:
    """The built tree a layer stages, checked complete (and, in a checkout, up to date)."""
    root = layers_root()
    if build == "python":
        tree = root / "python"
        if root == PACKAGED_LAYERS and PACKAGED_PYTHON_ZIP.is_file():
            tree = _unpacked(PACKAGED_PYTHON_ZIP)
        if not tree.is_dir():
            raise LayerNotBuiltError(f"the Python layer is not built ({tree} is missing): {HOW_TO_BUILD}")
        _fresh(root, "python")
        pkg = tree / "loki_telemetry_extension"
        for runtime in PYTHON_BUILD_RUNTIMES:
            tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
            if not list(pkg.glob(f"__pycache__/__main__.{tag}.pyc")):
                raise LayerNotBuiltError(f"{tree} has no .pyc for {runtime}: {HOW_TO_BUILD}")
    else:
        arch = (architecture or lambda_.Architecture.X86_64).name
        tree = root / "native" / arch
        if not (tree / EXTENSION_FILE).is_file():
            raise LayerNotBuiltError(
                f"the native extension for {arch} is not built ({tree / EXTENSION_FILE} is missing): "
                f"{HOW_TO_BUILD}"
            )
        _fresh(root, "native")
    _check_executable(tree)
    return tree


class LokiTelemetryLayer(lambda_.LayerVersion):
    """A Lambda layer holding the Loki Telemetry API extension.

    ``build="python"`` (default): the Python build, for Python 3.10-3.13 functions on both
    architectures. Lands in ``/opt/extensions/loki-telemetry-extension`` (an sh launcher) and
    ``/opt/loki_telemetry_extension`` (the code with unchecked-hash ``.pyc`` for each of those
    runtimes, outside ``/opt/python`` so it never shadows the function's imports).

    ``build="native"``: the static Go binary as ``/opt/extensions/loki-telemetry-extension``, for
    any runtime; one layer per ``architecture`` (default ``X86_64``). Compatible runtimes are left
    unset (CloudFormation allows at most 15, and every runtime that takes a layer can use it)
    unless given.

    Configure it through :class:`LokiLogging`, which also sets the environment the extension reads.
    ``precompile=False`` (Python build only) stages the tree without its ``.pyc``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        build: LayerBuild = "python",
        architecture: lambda_.Architecture | None = None,
        description: str | None = None,
        layer_version_name: str | None = None,
        license: str | None = None,
        removal_policy: RemovalPolicy | None = None,
        compatible_runtimes: Sequence[lambda_.Runtime] | None = None,
        compatible_architectures: Sequence[lambda_.Architecture] | None = None,
        precompile: bool = True,
    ) -> None:
        if build not in LAYER_BUILDS:
            raise ValueError(f"LokiTelemetryLayer build={build!r}: must be one of {', '.join(LAYER_BUILDS)}")
        if compatible_runtimes is not None and len(compatible_runtimes) > MAX_COMPATIBLE_RUNTIMES:
            raise ValueError(
                f"LokiTelemetryLayer compatible_runtimes has {len(compatible_runtimes)} entries; "
                f"CloudFormation allows at most {MAX_COMPATIBLE_RUNTIMES}: pass fewer, or none"
            )
        if architecture is not None and compatible_architectures is not None:
            raise ValueError("LokiTelemetryLayer: pass architecture or compatible_architectures, not both")
        if build == "native":
            if not precompile:
                raise ValueError("LokiTelemetryLayer precompile=False applies to build='python' only")
            if compatible_architectures is not None:
                if len(compatible_architectures) != 1:
                    raise ValueError(
                        "LokiTelemetryLayer build='native' holds one architecture's binary: pass "
                        "architecture=lambda_.Architecture.X86_64 or ARM_64, one layer per architecture"
                    )
                architecture = compatible_architectures[0]
        self.build: LayerBuild = build
        self.architecture = architecture
        tree = layer_tree(build, architecture)
        if build == "python":
            runtimes: list[lambda_.Runtime] | None = list(compatible_runtimes or SUPPORTED_RUNTIMES)
            both = list(SUPPORTED_ARCHITECTURES)
            archs = list(compatible_architectures or ([architecture] if architecture else both))
            what = "Python build"
        else:
            runtimes = list(compatible_runtimes) if compatible_runtimes else None
            arch = architecture or lambda_.Architecture.X86_64
            archs = [arch]
            what = f"native build, {arch.name}"
        super().__init__(
            scope,
            id,
            # The tree is built and complete: its content hash is the asset hash, the same on
            # every machine for one library version. No bundling, nothing runs at synth.
            code=lambda_.Code.from_asset(str(tree), exclude=[] if precompile else ["**/__pycache__"]),
            compatible_runtimes=runtimes,
            compatible_architectures=archs,
            description=description
            or f"Ships Lambda function logs to Grafana Loki (loki-telemetry-construct {_version()}, {what})",
            layer_version_name=layer_version_name,
            license=license or LICENSE,
            removal_policy=removal_policy,
        )
