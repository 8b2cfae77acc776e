"""loki-telemetry-construct: ship every Lambda function's logs to Grafana Loki.

One line in a CDK app attaches the Loki Telemetry API extension layer, and its
configuration, to every function in a scope that can take a layer (Python 3.10-3.13 get
the Python build, every other runtime the native build for its architecture)::

    from loki_telemetry_construct import with_loki_logging

    with_loki_logging(stack, loki_url="https://logs-prod-012.grafana.net/loki/api/v1/push")
"""

from __future__ import annotations

from ._contract import envvars
from .aspect import LokiLogging, with_loki_logging
from .layer import SUPPORTED_ARCHITECTURES, SUPPORTED_RUNTIMES, LokiTelemetryLayer
from .options import ConfigError
from .runtimes import Extension
from .settings import (
    CredentialSource,
    Flush,
    LokiOptions,
    Selector,
    TelemetryBuffering,
    options_table_markdown,
)
from .warning_ids import WarningIds

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "SUPPORTED_RUNTIMES",
    "ConfigError",
    "CredentialSource",
    "Extension",
    "Flush",
    "LokiLogging",
    "LokiOptions",
    "LokiTelemetryLayer",
    "Selector",
    "TelemetryBuffering",
    "WarningIds",
    "envvars",
    "options_table_markdown",
    "with_loki_logging",
]
