"""``python -m loki_telemetry_construct write-layer``: the layer's contents, for a container image.

Container-image functions cannot use layers, so the extension goes into the image instead::

    python -m loki_telemetry_construct write-layer --build native --architecture arm64 loki-layer
    # Dockerfile:
    #   COPY loki-layer/ /opt/
    # and set LOKI_URL (or LOKI_IP) and any other LOKI_* variables on the function.

The folder holds exactly what the layer would put in ``/opt``: for the native build the
static binary ``extensions/loki-telemetry-extension`` (mode 0755), which needs nothing else in
the image; for the Python build the launcher and the package (the image needs Python 3.10-3.13
as ``/var/lang/bin/python3`` or ``python3`` on PATH).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from . import layer

_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


def write_layer(out: Path, build: layer.LayerBuild, architecture: str = "x86_64") -> Path:
    """Copy the built layer tree of ``build`` (and ``architecture``, native only) into ``out``."""
    tree = layer.layer_tree(build, _ARCHITECTURES[architecture] if build == "native" else None)
    # copytree keeps the mode bits: Lambda starts only executable extensions.
    shutil.copytree(tree, out, dirs_exist_ok=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loki_telemetry_construct", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write-layer", help="write the layer's /opt contents into a folder")
    write.add_argument("out", type=Path, help="folder to write (created if missing)")
    write.add_argument("--build", choices=layer.LAYER_BUILDS, default="native")
    write.add_argument("--architecture", choices=sorted(_ARCHITECTURES), default="x86_64")
    args = parser.parse_args(argv)
    try:
        out = write_layer(args.out, args.build, args.architecture)
    except layer.LayerNotBuiltError as exc:
        print(f"loki-telemetry-construct: {exc}", file=sys.stderr)
        return 1
    what = f"{args.build} build" + (f", {args.architecture}" if args.build == "native" else "")
    print(f"wrote the Loki extension ({what}) to {out}/")
    print(f"Dockerfile:  COPY {out.name}/ /opt/")
    print("then set LOKI_URL (or LOKI_IP) and any other LOKI_* variables on the function")
    return 0


if __name__ == "__main__":
    sys.exit(main())
