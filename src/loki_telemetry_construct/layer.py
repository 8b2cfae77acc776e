"""``LokiTelemetryLayer``: the extension packaged as a Lambda layer."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from aws_cdk import Annotations, AssetHashType, BundlingOptions, DockerImage, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ._precompile import PrecompilingBundler, source_hash
from .warning_ids import WarningIds

#: The layer root: ``extensions/<launcher>`` plus the package beside it (lands in /opt).
#: ``resolve()`` follows the checkout's ``_layer -> ../../extension`` symlink so the asset
#: is staged from real files either way.
LAYER_ROOT = (Path(__file__).parent / "_layer").resolve()

#: Caches and build leftovers must not change the asset hash between machines or runs.
LAYER_EXCLUDES = (
    "**/__pycache__",
    "**/*.pyc",
    "**/*.pyo",
    "**/.mypy_cache",
    "**/.pytest_cache",
    "**/.ruff_cache",
    "**/.hypothesis",
    "**/.DS_Store",
)

#: The Lambda runtimes the extension is tested on; it runs on the function's own interpreter.
SUPPORTED_RUNTIMES: tuple[lambda_.Runtime, ...] = (
    lambda_.Runtime.PYTHON_3_10,
    lambda_.Runtime.PYTHON_3_11,
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
)
SUPPORTED_RUNTIME_NAMES = frozenset(r.name for r in SUPPORTED_RUNTIMES)

#: Pure Python: the same bytes run on both.
SUPPORTED_ARCHITECTURES: tuple[lambda_.Architecture, ...] = (
    lambda_.Architecture.X86_64,
    lambda_.Architecture.ARM_64,
)

LICENSE = "Apache-2.0"


def _version() -> str:
    try:
        return metadata.version("loki-telemetry-construct")
    except metadata.PackageNotFoundError:  # running from a plain checkout
        return "0+unknown"


class LokiTelemetryLayer(lambda_.LayerVersion):
    """A Lambda layer holding the Loki Telemetry API extension.

    Lands in ``/opt/extensions/loki-telemetry-extension`` (the launcher) and
    ``/opt/loki_telemetry_extension`` (the code, outside ``/opt/python`` so it never
    shadows the function's imports). Configure it through :class:`LokiLogging`, which
    also sets the environment the extension reads.

    ``precompile`` (default True): ship unchecked-hash ``.pyc`` files for every compatible
    runtime whose interpreter is found at synth time (the synthesizing Python, ``python3.X``
    on ``PATH``), so cold starts do not compile the extension on read-only ``/opt``. Local
    bundling, never Docker; the asset hash depends on the source files only, so the template
    is the same on every machine. False stages the plain source tree.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        description: str | None = None,
        layer_version_name: str | None = None,
        license: str | None = None,
        removal_policy: RemovalPolicy | None = None,
        compatible_runtimes: Sequence[lambda_.Runtime] | None = None,
        compatible_architectures: Sequence[lambda_.Architecture] | None = None,
        precompile: bool = True,
    ) -> None:
        runtimes = list(compatible_runtimes or SUPPORTED_RUNTIMES)
        bundler = (
            PrecompilingBundler(LAYER_ROOT, LAYER_EXCLUDES, [r.name for r in runtimes])
            if precompile
            else None
        )
        super().__init__(
            scope,
            id,
            code=_layer_code(bundler),
            compatible_runtimes=runtimes,
            compatible_architectures=list(compatible_architectures or SUPPORTED_ARCHITECTURES),
            description=description
            or f"Ships Lambda function logs to Grafana Loki (loki-telemetry-construct {_version()})",
            layer_version_name=layer_version_name,
            license=license or LICENSE,
            removal_policy=removal_policy,
        )
        # Bundling ran inside super().__init__ (the asset is staged when the code is bound).
        for problem in bundler.problems if bundler else ():
            Annotations.of(self).add_warning_v2(WarningIds.PRECOMPILE_SKIPPED, problem)


def _layer_code(bundler: PrecompilingBundler | None) -> lambda_.Code:
    if bundler is None:
        return lambda_.Code.from_asset(str(LAYER_ROOT), exclude=list(LAYER_EXCLUDES))
    return lambda_.Code.from_asset(
        str(LAYER_ROOT),
        exclude=list(LAYER_EXCLUDES),
        # Which interpreters the synth machine has must not change the template.
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(LAYER_ROOT, LAYER_EXCLUDES),
        bundling=BundlingOptions(
            # Never pulled or run: local bundling always succeeds. CDK requires an image.
            image=DockerImage.from_registry("scratch"),
            local=bundler,
        ),
    )
