"""Which build of the extension each function gets, and why a function is skipped.

Two pure tables and one pure function, no CDK calls: the aspect asks :func:`classify` with
the runtime's name, then reports a :class:`Skip` through :data:`SKIP_REASONS` (rules apart
from reporting, as cdk-nag keeps them). A test walks every runtime aws-cdk-lib knows, so a
CDK upgrade that adds one fails loudly instead of skipping it silently.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from .warning_ids import WarningIds

#: ``extension=`` values: which build instruments which function.
Extension = Literal["auto", "python", "native"]
EXTENSION_MODES: tuple[Extension, ...] = ("auto", "python", "native")
#: The two builds of the extension (one layer for "python", one per architecture for "native").
Build = Literal["python", "native"]

#: Runtimes the Python build runs on (it runs on the function's own interpreter).
PYTHON_BUILD_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13")

#: Runtimes on Amazon Linux 1, all retired by Lambda (functions can be neither created nor
#: updated), and built before the Extensions API existed on them: no layer of ours can serve them.
RETIRED_RUNTIMES = frozenset(
    {
        "nodejs",
        "nodejs4.3",
        "nodejs6.10",
        "nodejs8.10",
        "python2.7",
        "python3.6",
        "python3.7",
        "java8",
        "go1.x",
        "provided",
        "dotnetcore1.0",
        "dotnetcore2.0",
        "dotnetcore2.1",
        "ruby2.5",
    }
)

#: Every other runtime that takes a layer, as aws-cdk-lib 2.275 names them (Amazon Linux 2
#: and 2023): the static native binary runs on all of them, on both architectures.
NATIVE_RUNTIMES = frozenset(
    {
        "python3.8",
        "python3.9",
        "python3.10",
        "python3.11",
        "python3.12",
        "python3.13",
        "python3.14",
        "nodejs10.x",
        "nodejs12.x",
        "nodejs14.x",
        "nodejs16.x",
        "nodejs18.x",
        "nodejs20.x",
        "nodejs22.x",
        "nodejs24.x",
        "java8.al2",
        "java8.al2023",
        "java11",
        "java11.al2023",
        "java17",
        "java17.al2023",
        "java21",
        "java25",
        "dotnetcore3.1",
        "dotnet6",
        "dotnet8",
        "dotnet9",
        "dotnet10",
        "ruby2.7",
        "ruby3.2",
        "ruby3.3",
        "ruby3.4",
        "ruby4.0",
        "provided.al2",
        "provided.al2023",
    }
)

#: The architectures the native build is made for (``Architecture.name``).
NATIVE_ARCHITECTURES = ("x86_64", "arm64")

#: ``Runtime.FROM_IMAGE.name``: the runtime of container-image functions.
FROM_IMAGE = "FROM_IMAGE"

#: Lambda Managed Instances (capacity providers) run these and their successors only.
_MANAGED_INSTANCES_MINIMUM = {"python": (3, 13), "nodejs": (22,), "java": (21,), "dotnet": (8,)}
_VERSIONED = re.compile(r"^(python|nodejs|java|dotnet)(\d+)(?:\.(\d+))?")


class Skip(enum.Enum):
    """Why the aspect leaves a function alone; each reason has one warning id and message."""

    CONTAINER_IMAGE = "container_image"
    RETIRED_RUNTIME = "retired_runtime"
    UNKNOWN_RUNTIME = "unknown_runtime"
    UNKNOWN_ARCHITECTURE = "unknown_architecture"  # native build, but not x86_64 or arm64
    NOT_PYTHON = "not_python"  # extension="python" on a non-Python runtime
    PYTHON_BUILD_UNSUPPORTED = "python_build_unsupported"  # extension="python" on python3.14, 3.9...
    LAMBDA_EDGE = "lambda_edge"
    CUSTOM_RESOURCE_PROVIDER = "custom_resource_provider"
    RAW_CFN_FUNCTION = "raw_cfn_function"


#: The one table of skip reasons: warning id and message (``{path}``, ``{runtime}``,
#: ``{architecture}`` filled in).
SKIP_REASONS: Mapping[Skip, tuple[str, str]] = {
    Skip.CONTAINER_IMAGE: (
        WarningIds.CONTAINER_IMAGE,
        "Loki logging skipped {path}: container-image functions cannot use layers. Put the "
        "extension into the image: `python -m loki_telemetry_construct write-layer --architecture "
        "<x86_64|arm64> loki-layer`, then `COPY loki-layer/ /opt/` in the Dockerfile, and set the "
        "LOKI_* environment on the function yourself.",
    ),
    Skip.RETIRED_RUNTIME: (
        WarningIds.RETIRED_RUNTIME,
        "Loki logging skipped {path}: runtime {runtime} runs on Amazon Linux 1, which Lambda has "
        "retired (no function can be created or updated on it) and which no build of the extension "
        "serves. Move the function to a current runtime.",
    ),
    Skip.UNKNOWN_RUNTIME: (
        WarningIds.UNKNOWN_RUNTIME,
        "Loki logging skipped {path}: runtime {runtime} is not one this library knows. If it is a "
        "Linux runtime that takes layers, attach LokiTelemetryLayer(build='native', architecture=...) "
        "and the LOKI_* environment yourself, or upgrade loki-telemetry-construct.",
    ),
    Skip.UNKNOWN_ARCHITECTURE: (
        WarningIds.UNKNOWN_RUNTIME,
        "Loki logging skipped {path}: its architecture is {architecture}, and the native build of the "
        "extension exists for " + " and ".join(NATIVE_ARCHITECTURES) + " only.",
    ),
    Skip.NOT_PYTHON: (
        WarningIds.NON_PYTHON_RUNTIME,
        "Loki logging skipped {path}: runtime {runtime} is not Python and extension='python' "
        "instruments Python functions only. Use extension='auto' to give it the native build.",
    ),
    Skip.PYTHON_BUILD_UNSUPPORTED: (
        WarningIds.UNSUPPORTED_PYTHON_RUNTIME,
        "Loki logging skipped {path}: runtime {runtime} is not one the Python build of the extension "
        "supports (" + ", ".join(PYTHON_BUILD_RUNTIMES) + "). Use extension='auto' to give it the "
        "native build.",
    ),
    Skip.LAMBDA_EDGE: (
        WarningIds.LAMBDA_EDGE,
        "Loki logging skipped {path}: its role trusts edgelambda.amazonaws.com, and Lambda@Edge "
        "functions cannot use layers or environment variables.",
    ),
    Skip.CUSTOM_RESOURCE_PROVIDER: (
        WarningIds.CUSTOM_RESOURCE_PROVIDER,
        "Loki logging skipped {path}: it is a custom-resource provider function (e.g. S3 "
        "autoDeleteObjects, LogRetention) that CDK manages as a raw CfnResource; its logs stay in "
        "CloudWatch.",
    ),
    Skip.RAW_CFN_FUNCTION: (
        WarningIds.RAW_CFN_FUNCTION,
        "Loki logging skipped {path}: it is a raw CfnFunction, not an aws_lambda.Function, so layers "
        "and environment cannot be added safely. Use aws_lambda.Function, or add the layer and "
        "environment yourself.",
    ),
}


@dataclass(frozen=True)
class Reason:
    """A skip, rendered: the warning id and the message."""

    warning_id: str
    message: str


def describe(skip: Skip, *, path: str, runtime: str = "", architecture: str = "") -> Reason:
    """The warning for ``skip`` on the function at ``path``."""
    warning_id, template = SKIP_REASONS[skip]
    return Reason(warning_id, template.format(path=path, runtime=runtime, architecture=architecture))


@cache
def classify(runtime: str, extension: Extension = "auto") -> Build | Skip:
    """The build that instruments a function on ``runtime``, or why none can.

    auto: Python 3.10-3.13 get the Python build, every other runtime that takes a layer the
    native build. python: the Python build where it runs, nothing elsewhere. native: the
    native build everywhere.
    """
    if runtime == FROM_IMAGE:
        return Skip.CONTAINER_IMAGE
    if runtime in RETIRED_RUNTIMES:
        return Skip.RETIRED_RUNTIME
    if runtime not in NATIVE_RUNTIMES:
        return Skip.UNKNOWN_RUNTIME
    python_build = runtime in PYTHON_BUILD_RUNTIMES
    if extension == "python":
        if python_build:
            return "python"
        return Skip.PYTHON_BUILD_UNSUPPORTED if runtime.startswith("python") else Skip.NOT_PYTHON
    if extension == "native":
        return "native"
    return "python" if python_build else "native"


def managed_instances_supported(runtime: str) -> bool:
    """True for the runtimes Lambda Managed Instances run: Python 3.13+, Node.js 22+, Java 21+,
    .NET 8+ and provided.al2023."""
    if runtime == "provided.al2023":
        return True
    match = _VERSIONED.match(runtime)
    if match is None:
        return False
    family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    version = (major, minor) if family == "python" else (major,)
    return version >= _MANAGED_INSTANCES_MINIMUM[family]
