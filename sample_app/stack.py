"""The sample app's stack: an S3 bucket, three functions (TypeScript, Python, Go), one DynamoDB table.

Every object put into the bucket triggers the function of its key prefix (``typescript/``,
``python/``, ``go/``), which writes the object key into the table and logs what it did.
Three runtimes side by side, as platform teams have them: Node.js 22 (bundled by esbuild),
Python 3.12, and a Go ``bootstrap`` on ``provided.al2023``.

The stack itself knows nothing about Loki: ``sample_app/app.py`` adds the library's
one-liner on top, exactly as a user would.
"""

from __future__ import annotations

from dataclasses import dataclass
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

from sample_app import bundling

#: The sample app's stack name (``sample_app/app.py``); the integ test uses its own.
APP_STACK_NAME = "LokiSampleApp"
FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
TABLE_ENV = "TABLE_NAME"
#: Keeps build caches out of the Python function's asset so its hash is the same on every machine.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]


@dataclass(frozen=True)
class SampleFunction:
    """One of the three functions: its construct id, runtime, and the key prefix routed to it."""

    construct_id: str
    language: str
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    handler: str
    prefix: str
    source: Path

    def code(self) -> lambda_.Code:
        if self.language == "TypeScript":
            return bundling.typescript_code(self.source / "index.ts")
        if self.language == "Go":
            return bundling.go_code(self.source, self.architecture)
        return lambda_.Code.from_asset(str(self.source), exclude=ASSET_EXCLUDES)


#: In the order the demo runs them. x86_64 for the compiled two so they run natively on the
#: usual build machine; the Python function is arm64 (the same code runs on either).
FUNCTIONS = (
    SampleFunction(
        "TypeScript",
        "TypeScript",
        lambda_.Runtime.NODEJS_22_X,
        lambda_.Architecture.X86_64,
        "index.handler",
        "typescript/",
        FUNCTIONS_DIR / "typescript",
    ),
    SampleFunction(
        "Python",
        "Python",
        lambda_.Runtime.PYTHON_3_12,
        lambda_.Architecture.ARM_64,
        "handler.handler",
        "python/",
        FUNCTIONS_DIR / "python",
    ),
    SampleFunction(
        "Go",
        "Go",
        lambda_.Runtime.PROVIDED_AL2023,
        lambda_.Architecture.X86_64,
        "bootstrap",
        "go/",
        FUNCTIONS_DIR / "go",
    ),
)


class SampleStack(Stack):
    """S3 → three functions (by key prefix) → DynamoDB."""

    bucket: s3.Bucket
    table: dynamodb.Table
    #: construct id → function, in :data:`FUNCTIONS` order.
    functions: dict[str, lambda_.Function]

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

        self.functions = {spec.construct_id: self._function(spec) for spec in FUNCTIONS}
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "TableName", value=self.table.table_name)

    def _function(self, spec: SampleFunction) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.construct_id}Logs",
            # An explicit group: bounded retention, and removed with the stack.
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=RemovalPolicy.DESTROY,
        )
        fn = lambda_.Function(
            self,
            spec.construct_id,
            runtime=spec.runtime,
            architecture=spec.architecture,
            handler=spec.handler,
            code=spec.code(),
            memory_size=128,
            timeout=Duration.seconds(10),
            environment={TABLE_ENV: self.table.table_name},
            log_group=log_group,
            role=_function_role(self, f"{spec.construct_id}Role", log_group),
            description=f"Writes each object key under {spec.prefix} to DynamoDB ({spec.language}).",
        )
        # Least privilege: the function only ever calls PutItem on this one table.
        fn.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[self.table.table_arn])
        )
        # S3 refuses overlapping notifications for one event type: each function has its own prefix.
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED_PUT,
            s3n.LambdaDestination(fn),
            s3.NotificationKeyFilter(prefix=spec.prefix),
        )
        CfnOutput(self, f"{spec.construct_id}FunctionName", value=fn.function_name)
        return fn


def _function_role(scope: Construct, construct_id: str, log_group: logs.LogGroup) -> iam.Role:
    """A role that may write to its function's own log group and nothing else (yet).

    Not AWSLambdaBasicExecutionRole: that grants ``logs:*`` actions on every log group.
    """
    role = iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    log_group.grant_write(role)
    return role
