"""The sample app's stack: S3 bucket → Python ``ingest`` function → DynamoDB table.

It is the seed's demo rebuilt with CDK: every object put into the bucket triggers the
``ingest`` function, which writes the object key into the table and logs what it did.
A small Node.js ``audit`` function (on object removal) is there so the sample shows the
Loki aspect skipping a runtime it cannot instrument, with its warning.

The stack itself knows nothing about Loki: :func:`integ.app_config.apply_loki` adds the
library's one-liner on top, exactly as a user would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

#: The sample app's stack name (``integ/app.py``); the integ test uses its own.
APP_STACK_NAME = "LokiSampleApp"
FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
INGEST_CODE_DIR = FUNCTIONS_DIR / "ingest"
AUDIT_CODE_DIR = FUNCTIONS_DIR / "audit"
INGEST_HANDLER = "handler.handler"
#: The newest Python runtime the extension is tested on (3.10-3.13).
INGEST_RUNTIME = lambda_.Runtime.PYTHON_3_13
TABLE_ENV = "TABLE_NAME"
#: Keeps build caches out of the function asset so its hash is the same on every machine.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]


class SampleStack(Stack):
    """S3 → Lambda (Python) → DynamoDB, plus a Node.js function the aspect skips."""

    bucket: s3.Bucket
    table: dynamodb.Table
    ingest: lambda_.Function
    audit: lambda_.Function

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.table = dynamodb.Table(
            self,
            "Objects",
            partition_key=dynamodb.Attribute(name="key", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # A sample: `cdk destroy` (and integ-runner's clean-up) must leave nothing behind.
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.bucket = s3.Bucket(
            self,
            "Uploads",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )

        ingest_logs = _log_group(self, "IngestLogs")
        self.ingest = lambda_.Function(
            self,
            "Ingest",
            runtime=INGEST_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=INGEST_HANDLER,
            code=lambda_.Code.from_asset(str(INGEST_CODE_DIR), exclude=ASSET_EXCLUDES),
            memory_size=128,
            timeout=Duration.seconds(10),
            environment={TABLE_ENV: self.table.table_name},
            log_group=ingest_logs,
            role=_function_role(self, "IngestRole", ingest_logs),
            description="Writes each uploaded object's key to DynamoDB and logs the response.",
        )
        # Least privilege: the function only ever calls PutItem on this one table.
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[self.table.table_arn])
        )
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED_PUT, s3n.LambdaDestination(self.ingest)
        )

        audit_logs = _log_group(self, "AuditLogs")
        self.audit = lambda_.Function(
            self,
            "Audit",
            runtime=lambda_.Runtime.NODEJS_24_X,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(AUDIT_CODE_DIR)),
            memory_size=128,
            timeout=Duration.seconds(10),
            log_group=audit_logs,
            role=_function_role(self, "AuditRole", audit_logs),
            description="Counts removed objects (Node.js: the Loki aspect skips it with a warning).",
        )
        self.bucket.add_event_notification(s3.EventType.OBJECT_REMOVED, s3n.LambdaDestination(self.audit))

        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "TableName", value=self.table.table_name)
        CfnOutput(self, "IngestFunctionName", value=self.ingest.function_name)


def _log_group(scope: Construct, construct_id: str) -> logs.LogGroup:
    # An explicit group: bounded retention, and removed with the stack.
    return logs.LogGroup(
        scope, construct_id, retention=logs.RetentionDays.ONE_WEEK, removal_policy=RemovalPolicy.DESTROY
    )


def _function_role(scope: Construct, construct_id: str, log_group: logs.LogGroup) -> iam.Role:
    """A role that may write to its function's own log group and nothing else (yet).

    Not AWSLambdaBasicExecutionRole: that grants ``logs:*`` actions on every log group.
    """
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    log_group.grant_write(role)
    return role
