"""cdk-nag (AWS Solutions rules) for the sample, and its acknowledged findings, each with its reason.

Everything else in the stack passes the rules as written; these are the exceptions.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks

from sample_app.stack import SampleStack

#: cdk-nag 3 reports through CDK's policy-validation plugins; findings are acknowledged by this id.
PACK = "AwsSolutions::"


def check(app: App) -> None:
    """Run the AWS Solutions rules on every stack of ``app`` at synth (a finding fails synth)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge_findings(stack: SampleStack) -> None:
    """The sample's justified exceptions to the AWS Solutions rules."""
    _ack(
        stack.bucket,
        "AwsSolutions-S1",
        "Sample upload bucket, destroyed with the stack; server access logs would need a second "
        "bucket that outlives it. Production apps should log to a central access-log bucket.",
    )
    for construct_id, reason in _PINNED_RUNTIMES.items():
        _ack(stack.functions[construct_id], "AwsSolutions-L1", reason)
    # S3 notifications are configured by CDK's own singleton custom resource; its role is CDK's.
    handler = stack.node.try_find_child(_NOTIFICATIONS_HANDLER_ID)
    if handler is not None:
        _ack(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's BucketNotificationsHandler custom resource (aws-cdk-lib) creates this role; it only "
            "runs at deploy time to configure the bucket's notifications.",
        )


#: Functions pinned to a runtime older than their family's newest, and why.
_PINNED_RUNTIMES = {
    "TypeScript": "Pinned to Node.js 22 (LTS), the Node version its esbuild bundle targets; pinned runtimes "
    "keep the sample's template the same when Lambda adds a newer one.",
    "Python": "Pinned to Python 3.12, a runtime the Loki extension supports (3.10-3.13); pinned runtimes "
    "keep the sample's template the same when Lambda adds a newer one.",
}

#: aws-cdk-lib's fixed id for the singleton that applies bucket notifications.
_NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def _ack(scope: object, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=PACK + rule, reason=reason))  # type: ignore[arg-type]
