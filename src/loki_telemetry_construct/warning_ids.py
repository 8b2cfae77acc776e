"""Stable ids of the annotations the aspect adds.

Acknowledge a warning on a function or any scope above it, e.g.
``Annotations.of(stack).acknowledge_warning(WarningIds.NON_PYTHON_RUNTIME, "Node logs stay in CloudWatch")``.
"""

from __future__ import annotations

_PREFIX = "loki-telemetry-construct:"


class WarningIds:
    """The ids passed to ``Annotations.add_warning_v2``; stable across releases."""

    #: A Node.js, Java, .NET, Ruby, custom-runtime... function: the extension is Python.
    NON_PYTHON_RUNTIME = _PREFIX + "nonPythonRuntime"
    #: A Python runtime outside the supported 3.10-3.13 (e.g. python3.9, python3.14).
    UNSUPPORTED_PYTHON_RUNTIME = _PREFIX + "unsupportedPythonRuntime"
    #: A container-image function: layers cannot be attached; bake the extension into the image.
    CONTAINER_IMAGE = _PREFIX + "containerImage"
    #: A Lambda@Edge function (its role trusts edgelambda.amazonaws.com): Lambda@Edge supports
    #: neither layers nor environment variables.
    LAMBDA_EDGE = _PREFIX + "lambdaEdge"
    #: A custom-resource provider's function (e.g. S3 autoDeleteObjects, LogRetention), an L1
    #: ``CfnResource`` that has no ``add_layers``/``add_environment``.
    CUSTOM_RESOURCE_PROVIDER = _PREFIX + "customResourceProvider"
    #: A raw ``CfnFunction`` not wrapped by an ``aws_lambda.Function``.
    RAW_CFN_FUNCTION = _PREFIX + "rawCfnFunction"
    #: The function was already instrumented by another LokiLogging with different settings;
    #: the first one applied wins.
    CONFLICTING_SETTINGS = _PREFIX + "conflictingSettings"
    #: The function's role is imported and immutable: the credential grant or the CloudWatch Deny is missing.
    IMMUTABLE_ROLE = _PREFIX + "immutableRole"
    #: ``LokiTelemetryLayer(precompile=True)`` found no interpreter for a compatible runtime, or
    #: one failed to compile: the layer works, but those runtimes compile the extension at cold start.
    PRECOMPILE_SKIPPED = _PREFIX + "precompileSkipped"


#: Errors cannot be acknowledged; listed for documentation and tests.
LAYER_ERROR_PREFIX = "[loki-telemetry-construct:layer]"
