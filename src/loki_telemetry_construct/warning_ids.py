"""Stable ids of the annotations the aspect adds.

Acknowledge a warning on a function or any scope above it, e.g.
``Annotations.of(stack).acknowledge_warning(WarningIds.NON_PYTHON_RUNTIME, "Node logs stay in CloudWatch")``.
"""

from __future__ import annotations

_PREFIX = "loki-telemetry-construct:"


class WarningIds:
    """The ids passed to ``Annotations.add_warning_v2``; stable across releases."""

    #: ``extension="python"`` and a Node.js, Java, .NET, Ruby or ``provided.*`` function: only
    #: Python functions were asked for (``extension="auto"`` gives it the native build).
    NON_PYTHON_RUNTIME = _PREFIX + "nonPythonRuntime"
    #: ``extension="python"`` and a Python runtime outside the Python build's 3.10-3.13
    #: (e.g. python3.9, python3.14; ``extension="auto"`` gives it the native build).
    UNSUPPORTED_PYTHON_RUNTIME = _PREFIX + "unsupportedPythonRuntime"
    #: A runtime on Amazon Linux 1 (python3.7, nodejs8.10, go1.x, provided, java8...): retired
    #: by Lambda, and no build of the extension serves it.
    RETIRED_RUNTIME = _PREFIX + "retiredRuntime"
    #: A runtime this library does not know (newer than its aws-cdk-lib, or made up), or a
    #: native-build function on an architecture other than x86_64 and arm64.
    UNKNOWN_RUNTIME = _PREFIX + "unknownRuntime"
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
    #: More than one LokiLogging aspect with different settings selects the function: the one
    #: on the innermost scope wins (on the same scope, the first added); the message names both.
    CONFLICTING_SETTINGS = _PREFIX + "conflictingSettings"
    #: The function's role cannot be changed (imported with ``mutable=False``, or a
    #: ``Role.without_policy_updates``): the credential grant or the CloudWatch Deny is missing.
    IMMUTABLE_ROLE = _PREFIX + "immutableRole"
    #: ``loki_url``'s path is neither /loki/api/v1/push nor /api/prom/push (fine behind a proxy
    #: that serves its own path; otherwise a typo that would lose every push). On the stack.
    UNUSUAL_PUSH_PATH = _PREFIX + "unusualPushPath"


#: Errors cannot be acknowledged; listed for documentation and tests.
LAYER_ERROR_PREFIX = "[loki-telemetry-construct:layer]"
