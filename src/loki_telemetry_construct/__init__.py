"""loki-telemetry-construct: ship every Python Lambda function's logs to Grafana Loki.

One line in a CDK app attaches the Loki Telemetry API extension layer, and its
configuration, to every supported function in a scope::

    from loki_telemetry_construct import with_loki_logging

    with_loki_logging(stack, loki_url="https://logs-prod-012.grafana.net/loki/api/v1/push")
"""

from __future__ import annotations

from ._contract import envvars
from .aspect import LokiLogging, Selector, with_loki_logging
from .layer import SUPPORTED_ARCHITECTURES, SUPPORTED_RUNTIMES, LokiTelemetryLayer
from .options import ConfigError, CredentialSource, TelemetryBuffering
from .warning_ids import WarningIds

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "SUPPORTED_RUNTIMES",
    "ConfigError",
    "CredentialSource",
    "LokiLogging",
    "LokiTelemetryLayer",
    "Selector",
    "TelemetryBuffering",
    "WarningIds",
    "envvars",
    "with_loki_logging",
]
