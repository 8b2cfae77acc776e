"""A local Lambda execution environment for tests, the demo and bench.

Runs a real Python handler through AWS's ``awslambdaric`` and every external extension
of the given layers as subprocesses, behind one HTTP server speaking the Runtime API,
the Extensions API and the Telemetry API. See docs/harness-lambda.md.
"""

from __future__ import annotations

from ._emulator import DEFAULT_TELEMETRY_BUFFER_LIMIT_BYTES, LambdaEmulator
from ._results import InitResult, InvokeResult, LambdaInitError, ShutdownResult
from ._subscription import Subscription
from ._telemetry import Delivery, TelemetryStats

__all__ = [
    "DEFAULT_TELEMETRY_BUFFER_LIMIT_BYTES",
    "Delivery",
    "InitResult",
    "InvokeResult",
    "LambdaEmulator",
    "LambdaInitError",
    "ShutdownResult",
    "Subscription",
    "TelemetryStats",
]
