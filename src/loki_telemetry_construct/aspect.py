"""``LokiLogging``: the aspect that instruments every supported Lambda function in a scope."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence

import jsii
from aws_cdk import Annotations, AspectPriority, Aspects, CfnResource, Duration, IAspect, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from . import grants, options
from .layer import SUPPORTED_RUNTIME_NAMES, LokiTelemetryLayer
from .options import CredentialSource, TelemetryBuffering
from .warning_ids import LAYER_ERROR_PREFIX, WarningIds

#: Something that selects functions: a construct (the function itself or any scope above
#: it) or a predicate called with the function (or, for L1 functions, the CfnResource).
Selector = IConstruct | Callable[[IConstruct], bool]

#: ``Runtime.FROM_IMAGE.name``: the runtime of container-image functions.
_FROM_IMAGE = "FROM_IMAGE"

#: Id of the layer the aspect creates in each stack that needs one.
LAYER_ID = "LokiTelemetryExtensionLayer"
#: Id of the marker child left on each instrumented function (makes the aspect idempotent).
MARKER_ID = "LokiTelemetryInstrumented"


class _Marker(Construct):
    """Records that a function was instrumented, and with which settings."""

    def __init__(self, scope: Construct, fingerprint: str) -> None:
        super().__init__(scope, MARKER_ID)
        self.fingerprint = fingerprint


@jsii.implements(IAspect)
class LokiLogging:
    """Attach the Loki extension layer and its configuration to every Python function in a scope.

    Apply it with :func:`with_loki_logging` or ``Aspects.of(scope).add(LokiLogging(...))``.
    Every option is keyword-only and validated here, before anything is created; see
    the README for the table of options and the environment variable each sets.

    :param loki_ip: host or IPv4 address of a Loki; means ``http://<loki_ip>:3100/loki/api/v1/push``.
    :param loki_url: full push URL, http or https. Exactly one of ``loki_ip``/``loki_url``.
    :param batch_size: entries queued before a push is due (1-10,000, default 100).
    :param flush_interval: age of the oldest queued entry at which a push is due (default 1 s).
    :param ship_before_freeze: ship each invoke's logs before the environment freezes (default off).
    :param telemetry_types: Telemetry API types to subscribe to (default ``("function",)``).
    :param buffering: Telemetry API buffering (:class:`TelemetryBuffering`).
    :param labels: static extra Loki labels (low cardinality only).
    :param tenant_id: sent as ``X-Scope-OrgID``.
    :param basic_auth_secret: secret/SSM parameter holding ``user:password``; each function gets read access.
    :param bearer_token_secret: secret/SSM parameter holding a bearer token; each function gets read access.
    :param max_buffer_bytes: memory bound of queued log bytes; the oldest are dropped (and counted) beyond it.
    :param max_line_bytes: longest line pushed as one entry; longer lines are split with a marker.
    :param disable_cloudwatch_logs: add an explicit IAM Deny of CloudWatch log writes to instrumented roles.
    :param include: only instrument functions selected by one of these (default: all).
    :param exclude: never instrument functions selected by one of these (wins over ``include``).
    :param layer: the layer to attach: an ``ILayerVersion`` or a layer version ARN (default: one
        :class:`LokiTelemetryLayer` per stack, created on first need).
    """

    def __init__(
        self,
        *,
        loki_ip: str | None = None,
        loki_url: str | None = None,
        batch_size: int | None = None,
        flush_interval: Duration | None = None,
        ship_before_freeze: bool = False,
        telemetry_types: Sequence[str] | None = None,
        buffering: TelemetryBuffering | None = None,
        labels: Mapping[str, str] | None = None,
        tenant_id: str | None = None,
        basic_auth_secret: CredentialSource | None = None,
        bearer_token_secret: CredentialSource | None = None,
        max_buffer_bytes: int | Size | None = None,
        max_line_bytes: int | Size | None = None,
        disable_cloudwatch_logs: bool = False,
        include: Sequence[Selector] | None = None,
        exclude: Sequence[Selector] | None = None,
        layer: lambda_.ILayerVersion | str | None = None,
    ) -> None:
        self.settings = options.build(
            loki_ip=loki_ip,
            loki_url=loki_url,
            batch_size=batch_size,
            flush_interval=flush_interval,
            ship_before_freeze=ship_before_freeze,
            telemetry_types_=telemetry_types,
            buffering=buffering,
            labels_=labels,
            tenant_id=tenant_id,
            basic_auth_secret=basic_auth_secret,
            bearer_token_secret=bearer_token_secret,
            max_buffer_bytes=max_buffer_bytes,
            max_line_bytes=max_line_bytes,
            disable_cloudwatch_logs=disable_cloudwatch_logs,
        )
        self._include = _selectors("include", include)
        self._exclude = _selectors("exclude", exclude)
        if isinstance(layer, str):
            options.layer_arn(layer)
        elif layer is not None and not hasattr(layer, "layer_version_arn"):
            raise options.fail(
                "layer",
                layer,
                "must be an aws_lambda.ILayerVersion or a layer version ARN string",
                "pass LokiTelemetryLayer(stack, 'LokiLayer') or 'arn:aws:lambda:...:layer:<name>:<version>'",
            )
        self._layer = layer
        self._fingerprint = self.settings.fingerprint() + repr(layer)

    # -- IAspect --------------------------------------------------------------------------
    def visit(self, node: IConstruct) -> None:
        """Instrument ``node`` if it is a supported function; warn about functions it must skip."""
        if isinstance(node, lambda_.SingletonFunction):
            # The real Function lives at the stack's root; reach it so scoping the aspect to
            # the singleton (or selecting it in include/exclude) works. Visiting both is safe.
            target = _singleton_target(node)
            if target is not None:
                self._instrument(target, also=node)
        elif isinstance(node, lambda_.Function):
            self._instrument(node, also=None)
        elif isinstance(node, lambda_.CfnFunction):
            # A Function's only CfnFunction child is its default child, handled via the Function.
            if not isinstance(node.node.scope, lambda_.Function):
                self._warn_l1(node)
        elif type(node) is CfnResource and node.cfn_resource_type == "AWS::Lambda::Function":
            # Exactly CfnResource (not a generated L1 subclass): how CustomResourceProvider and
            # LogRetention declare their functions. The type check first keeps visits cheap.
            self._warn_l1(node)

    # -- internals ------------------------------------------------------------------------
    def _selected(self, fn: IConstruct, also: IConstruct | None) -> bool:
        candidates = [fn] if also is None else [fn, also]
        if self._include and not any(_matches(s, c) for s in self._include for c in candidates):
            return False
        return not any(_matches(s, c) for s in self._exclude for c in candidates)

    def _warn_l1(self, node: CfnResource) -> None:
        if not self._selected(node, None):
            return
        if isinstance(node, lambda_.CfnFunction):
            Annotations.of(node).add_warning_v2(
                WarningIds.RAW_CFN_FUNCTION,
                f"Loki logging skipped {node.node.path}: it is a raw CfnFunction, not an "
                "aws_lambda.Function, so layers and environment cannot be added safely. Use "
                "aws_lambda.Function, or add the layer and environment yourself.",
            )
        else:
            Annotations.of(node).add_warning_v2(
                WarningIds.CUSTOM_RESOURCE_PROVIDER,
                f"Loki logging skipped {node.node.path}: it is a custom-resource provider function "
                "(e.g. S3 autoDeleteObjects, LogRetention) that CDK manages as a raw CfnResource; "
                "its logs stay in CloudWatch.",
            )

    def _instrument(self, fn: lambda_.Function, also: IConstruct | None) -> None:
        if not self._selected(fn, also):
            return
        marker = fn.node.try_find_child(MARKER_ID)
        if marker is not None:
            if getattr(marker, "fingerprint", None) != self._fingerprint:
                Annotations.of(fn).add_warning_v2(
                    WarningIds.CONFLICTING_SETTINGS,
                    f"Loki logging: {fn.node.path} is selected by more than one LokiLogging aspect with "
                    "different settings; the first applied wins. Use include/exclude to pick one.",
                )
            return
        if not self._runtime_supported(fn):
            return
        stack = Stack.of(fn)
        if _is_edge_function(fn, stack):
            Annotations.of(fn).add_warning_v2(
                WarningIds.LAMBDA_EDGE,
                f"Loki logging skipped {fn.node.path}: its role trusts edgelambda.amazonaws.com, and "
                "Lambda@Edge functions cannot use layers or environment variables.",
            )
            return
        layer = self._layer_for(stack)
        try:
            fn.add_layers(layer)
        except RuntimeError as exc:  # jsii surfaces CDK's ValidationError (e.g. the 5-layer limit)
            Annotations.of(fn).add_error(
                f"{LAYER_ERROR_PREFIX} cannot attach the Loki extension layer to {fn.node.path}: "
                f"{_jsii_message(exc)}. Fix: Lambda allows 5 layers per function, so remove one or "
                "exclude this function (exclude=[fn]); if you passed layer=, it must list the "
                f"function's runtime ({fn.runtime.name}) among its compatible runtimes."
            )
            return
        for key, value in self.settings.environment.items():
            # Lambda@Edge forbids environment variables: CDK drops these there instead of failing.
            fn.add_environment(key, value, remove_in_edge=True)
        statements = [
            st for source in self.settings.credentials for st in grants.credential_statements(fn, source)
        ]
        if self.settings.disable_cloudwatch_logs:
            statements.append(grants.cloudwatch_deny())
        if not all([grants.add_to_role(fn, st) for st in statements]):
            Annotations.of(fn).add_warning_v2(
                WarningIds.IMMUTABLE_ROLE,
                f"Loki logging could not change the role of {fn.node.path} (it is imported or immutable): "
                "grant it read access to the Loki credential and/or add the CloudWatch Logs Deny yourself.",
            )
        _Marker(fn, self._fingerprint)

    def _runtime_supported(self, fn: lambda_.Function) -> bool:
        runtime = fn.runtime
        name = runtime.name
        if name in SUPPORTED_RUNTIME_NAMES:
            return True  # Python by definition; the common case costs no further jsii calls
        if name == _FROM_IMAGE:
            Annotations.of(fn).add_warning_v2(
                WarningIds.CONTAINER_IMAGE,
                f"Loki logging skipped {fn.node.path}: container-image functions cannot use layers. "
                "Copy the extension into the image (/opt/extensions and /opt/loki_telemetry_extension) "
                "and set the LOKI_* environment yourself.",
            )
            return False
        if runtime.family != lambda_.RuntimeFamily.PYTHON:
            Annotations.of(fn).add_warning_v2(
                WarningIds.NON_PYTHON_RUNTIME,
                f"Loki logging skipped {fn.node.path}: runtime {name} is not Python; "
                "the extension supports Python functions only. Its logs stay in CloudWatch.",
            )
            return False
        supported = ", ".join(sorted(SUPPORTED_RUNTIME_NAMES))
        Annotations.of(fn).add_warning_v2(
            WarningIds.UNSUPPORTED_PYTHON_RUNTIME,
            f"Loki logging skipped {fn.node.path}: runtime {name} is not one the extension "
            f"supports ({supported}). Move the function to a supported runtime.",
        )
        return False

    def _layer_for(self, stack: Stack) -> lambda_.ILayerVersion:
        if self._layer is not None and not isinstance(self._layer, str):
            return self._layer
        if isinstance(self._layer, str):
            # One import per stack and ARN; the id is derived from the ARN so two aspects with
            # different ARNs in one stack don't collide.
            digest = hashlib.sha256(self._layer.encode()).hexdigest()[:8]
            layer_id = f"{LAYER_ID}Import{digest}"
            found = stack.node.try_find_child(layer_id)
            if found is not None:
                return found  # type: ignore[return-value]
            return lambda_.LayerVersion.from_layer_version_arn(stack, layer_id, self._layer)
        found = stack.node.try_find_child(LAYER_ID)
        if isinstance(found, lambda_.LayerVersion):
            return found
        return LokiTelemetryLayer(stack, LAYER_ID)


def with_loki_logging(
    scope: IConstruct,
    *,
    loki_ip: str | None = None,
    loki_url: str | None = None,
    batch_size: int | None = None,
    flush_interval: Duration | None = None,
    ship_before_freeze: bool = False,
    telemetry_types: Sequence[str] | None = None,
    buffering: TelemetryBuffering | None = None,
    labels: Mapping[str, str] | None = None,
    tenant_id: str | None = None,
    basic_auth_secret: CredentialSource | None = None,
    bearer_token_secret: CredentialSource | None = None,
    max_buffer_bytes: int | Size | None = None,
    max_line_bytes: int | Size | None = None,
    disable_cloudwatch_logs: bool = False,
    include: Sequence[Selector] | None = None,
    exclude: Sequence[Selector] | None = None,
    layer: lambda_.ILayerVersion | str | None = None,
) -> LokiLogging:
    """Ship the logs of every Python function in ``scope`` (an App, Stage, Stack or function) to Loki.

    Adds a :class:`LokiLogging` aspect (same options) with ``AspectPriority.MUTATING`` and
    returns it.
    """
    aspect = LokiLogging(
        loki_ip=loki_ip,
        loki_url=loki_url,
        batch_size=batch_size,
        flush_interval=flush_interval,
        ship_before_freeze=ship_before_freeze,
        telemetry_types=telemetry_types,
        buffering=buffering,
        labels=labels,
        tenant_id=tenant_id,
        basic_auth_secret=basic_auth_secret,
        bearer_token_secret=bearer_token_secret,
        max_buffer_bytes=max_buffer_bytes,
        max_line_bytes=max_line_bytes,
        disable_cloudwatch_logs=disable_cloudwatch_logs,
        include=include,
        exclude=exclude,
        layer=layer,
    )
    Aspects.of(scope).add(aspect, priority=AspectPriority.MUTATING)
    return aspect


def _selectors(option: str, value: Sequence[Selector] | None) -> tuple[Selector, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise options.fail(option, value, "must be a list of constructs or predicates", f"pass {option}=[fn]")
    for item in value:
        if not callable(item) and not hasattr(item, "node"):
            raise options.fail(
                option,
                item,
                "each entry must be a construct (a function or a scope above it) or a predicate",
                f"pass e.g. {option}=[my_function] or {option}=[lambda fn: fn.node.id.startswith('Legacy')]",
            )
    return tuple(value)


def _matches(selector: Selector, node: IConstruct) -> bool:
    # A SingletonFunction's function lives at the stack root, not under the wrapper: it is
    # the one that shares the wrapper's ARN token.
    if (
        isinstance(selector, lambda_.SingletonFunction)
        and isinstance(node, lambda_.Function)
        and selector.function_arn == node.function_arn
    ):
        return True
    if hasattr(selector, "node"):
        scope_path: str = selector.node.path
        path = node.node.path
        return scope_path == "" or path == scope_path or path.startswith(scope_path + "/")
    assert callable(selector)
    return bool(selector(node))


def _singleton_target(singleton: lambda_.SingletonFunction) -> lambda_.Function | None:
    """The Function a SingletonFunction wraps, found through public API only.

    The wrapper shares the function's ARN token, and CDK creates the function at the
    root of the wrapper's stack.
    """
    arn = singleton.function_arn
    for child in Stack.of(singleton).node.children:
        if isinstance(child, lambda_.Function) and child.function_arn == arn:
            return child
    return None


def _is_edge_function(fn: lambda_.Function, stack: Stack) -> bool:
    """Lambda@Edge requires the role to trust edgelambda.amazonaws.com; that is the public tell."""
    role = fn.role
    if not isinstance(role, iam.Role):
        return False
    trust = role.assume_role_policy
    return trust is not None and "edgelambda.amazonaws.com" in json.dumps(stack.resolve(trust))


def _jsii_message(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
