"""Synthesize the sample app with the real CDK CLI and read back what it produced.

The demo trusts only the cloud assembly: which functions carry the Loki layer and its
environment comes from the synthesized template, why others were skipped from the
warnings CDK recorded in the assembly's metadata, and the code the local run executes
from the asset directories CDK staged (``cdk.out/asset.<hash>``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sample_app.toolchain import NODE_BIN, SAMPLE_APP_DIR, tool_env

#: The layer's launcher, relative to the layer root: how a staged asset is recognised as our layer.
LAUNCHER = Path("extensions") / "loki-telemetry-extension"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
LAYER_VERSION = "AWS::Lambda::LayerVersion"
WARNING = "aws:cdk:warning"
ERROR = "aws:cdk:error"


class SynthError(RuntimeError):
    """`cdk synth` failed or produced something the demo cannot use."""


def cdk_synth(
    out_dir: Path,
    context: Mapping[str, str],
    *,
    on_line: Callable[[str], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """``cdk synth`` in ``sample_app/`` (its ``cdk.json``) into ``out_dir``; returns CDK's output lines."""
    cmd = [str(NODE_BIN / "cdk"), "synth", "--quiet", "--no-notices", "--output", str(out_dir)]
    for key, value in context.items():
        cmd += ["--context", f"{key}={value}"]
    proc = subprocess.Popen(
        cmd,
        cwd=SAMPLE_APP_DIR,
        env=tool_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        lines.append(line)
        if on_line is not None:
            on_line(line)
    if proc.wait() != 0:
        if on_line is not None:  # the caller has shown every line already
            raise SynthError(f"cdk synth failed (exit {proc.returncode}); its output is above")
        tail = "\n".join(lines[-40:])
        raise SynthError(f"cdk synth failed (exit {proc.returncode}):\n{tail}")
    return lines


@dataclass(frozen=True)
class FunctionInfo:
    """One ``AWS::Lambda::Function`` of the synthesized template, as the demo reports it."""

    logical_id: str
    path: str  # construct path, e.g. LokiSampleApp/Python/Resource
    runtime: str
    architecture: str  # x86_64 | arm64 (Lambda's default when the template names none)
    handler: str
    environment: Mapping[str, Any]
    layer_ids: tuple[str, ...]  # logical ids of the stack's own layers it uses
    code_asset: str | None  # asset directory name in cdk.out, if the code is an asset
    instrumented: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SynthesizedStack:
    """A stack of the cloud assembly: its template, warnings and staged assets."""

    out_dir: Path
    name: str
    template: Mapping[str, Any]
    warnings: Mapping[str, tuple[str, ...]]  # construct path -> messages
    errors: Mapping[str, tuple[str, ...]]
    loki_layer_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        resources: Mapping[str, Mapping[str, Any]] = self.template.get("Resources", {})
        return resources

    def asset_dir(self, logical_id: str) -> Path | None:
        """The staged asset directory a resource's code comes from (CLI asset metadata)."""
        meta = self.resources[logical_id].get("Metadata", {})
        name = meta.get("aws:asset:path")
        return None if name is None else self.out_dir / str(name)

    def functions(self) -> list[FunctionInfo]:
        return [self._function(lid) for lid, res in self.resources.items() if res["Type"] == LAMBDA_FUNCTION]

    def function_at(self, path_prefix: str) -> FunctionInfo:
        """The function whose construct path starts with ``path_prefix`` (e.g. ``LokiSampleApp/Python/``)."""
        found = [f for f in self.functions() if f.path.startswith(path_prefix)]
        if len(found) != 1:
            raise SynthError(f"expected one function under {path_prefix!r}, found {[f.path for f in found]}")
        return found[0]

    def _function(self, logical_id: str) -> FunctionInfo:
        res = self.resources[logical_id]
        props = res.get("Properties", {})
        path = str(res.get("Metadata", {}).get("aws:cdk:path", logical_id))
        env = props.get("Environment", {}).get("Variables", {})
        layers = tuple(
            layer["Ref"] for layer in props.get("Layers", []) if isinstance(layer, dict) and "Ref" in layer
        )
        asset = res.get("Metadata", {}).get("aws:asset:path")
        owner = "/" + path.removesuffix("/Resource")
        messages = tuple(
            msg
            for wpath, msgs in self.warnings.items()
            if wpath != "/" + self.name
            and (owner == wpath or owner.startswith(wpath + "/") or wpath.startswith(owner + "/"))
            for msg in msgs
        )
        return FunctionInfo(
            logical_id=logical_id,
            path=path,
            runtime=str(
                props.get("Runtime", "(container image)" if "ImageUri" in props.get("Code", {}) else "?")
            ),
            architecture=str((props.get("Architectures") or ["x86_64"])[0]),
            handler=str(props.get("Handler", "")),
            environment=env,
            layer_ids=layers,
            code_asset=None if asset is None else str(asset),
            instrumented=any(lid in self.loki_layer_ids for lid in layers),
            warnings=messages,
        )


def read_stack(out_dir: Path, stack_name: str) -> SynthesizedStack:
    """Load ``stack_name`` from the cloud assembly in ``out_dir``."""
    manifest = json.loads((out_dir / "manifest.json").read_text())
    artifact = manifest.get("artifacts", {}).get(stack_name)
    if artifact is None or artifact.get("type") != "aws:cloudformation:stack":
        raise SynthError(f"no stack {stack_name!r} in {out_dir / 'manifest.json'}")
    template = json.loads((out_dir / artifact["properties"]["templateFile"]).read_text())
    warnings: dict[str, list[str]] = {}
    errors: dict[str, list[str]] = {}
    metadata: dict[str, list[dict[str, Any]]] = dict(artifact.get("metadata", {}))
    if "additionalMetadataFile" in artifact:
        # The CLI writes a stack's metadata to <stack>.metadata.json beside the template.
        extra = json.loads((out_dir / artifact["additionalMetadataFile"]).read_text())
        for path, entries in extra.items():
            metadata.setdefault(path, []).extend(entries)
    for path, entries in metadata.items():
        for entry in entries:
            if entry.get("type") == WARNING:
                warnings.setdefault(path, []).append(_message(entry.get("data")))
            elif entry.get("type") == ERROR:
                errors.setdefault(path, []).append(_message(entry.get("data")))
    stack = SynthesizedStack(
        out_dir=out_dir,
        name=stack_name,
        template=template,
        warnings={k: tuple(v) for k, v in warnings.items()},
        errors={k: tuple(v) for k, v in errors.items()},
    )
    loki_layers = frozenset(lid for lid in _layer_ids(stack) if _is_loki_layer(stack.asset_dir(lid)))
    return SynthesizedStack(
        out_dir=out_dir,
        name=stack_name,
        template=template,
        warnings=stack.warnings,
        errors=stack.errors,
        loki_layer_ids=loki_layers,
    )


def _layer_ids(stack: SynthesizedStack) -> Iterator[str]:
    return (lid for lid, res in stack.resources.items() if res["Type"] == LAYER_VERSION)


def _is_loki_layer(asset_dir: Path | None) -> bool:
    return asset_dir is not None and (asset_dir / LAUNCHER).is_file()


def _message(data: object) -> str:
    # add_warning_v2 records "<message> [ack: <id>]"; keep it whole so users see the id to acknowledge.
    return data if isinstance(data, str) else json.dumps(data)
