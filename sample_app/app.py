"""The sample app: ``cdk synth`` / ``cdk deploy`` from ``sample_app/`` (see ``sample_app/cdk.json``).

One stack, S3 → three functions (TypeScript, Python, Go) → DynamoDB, with the Loki library
applied by its one-liner and checked by cdk-nag's AWS Solutions rules. Loki settings:
``sample_app/loki_settings.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script by the CDK CLI (`python3 app.py`): make `sample_app` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aws_cdk import App

from sample_app import nag
from sample_app.loki_settings import LokiSettings
from sample_app.stack import APP_STACK_NAME as STACK_NAME
from sample_app.stack import SampleStack


def build(app: App) -> SampleStack:
    """The sample stack, instrumented and nag-checked, in ``app``."""
    stack = SampleStack(
        app,
        STACK_NAME,
        description="loki-telemetry-construct sample: S3 -> Lambda (TypeScript, Python, Go) -> DynamoDB, "
        "logs to Loki",
    )
    LokiSettings.resolve(stack).apply(stack)
    nag.acknowledge_findings(stack)
    nag.check(app)
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
