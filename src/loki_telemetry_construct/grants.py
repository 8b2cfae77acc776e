"""IAM changes on an instrumented function's role: read its Loki credential, deny CloudWatch writes.

Statements go on the role (identity policy) only. ``ISecret.grant_read`` would also edit a
customer-managed key's resource policy to name the role, which creates a dependency cycle
when the function lives in a nested stack and the secret in its parent; an identity
policy works because CDK keys (and the AWS-managed keys) trust the account's IAM policies.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Dependable

from .options import CredentialSource

#: The only call the extension makes for each kind of credential (least privilege).
SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
PARAMETER_ACTIONS = ("ssm:GetParameter",)
KMS_ACTIONS = ("kms:Decrypt",)
#: What the CloudWatch Deny blocks: writing log events (creating the group is harmless).
CLOUDWATCH_DENY_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
CLOUDWATCH_DENY_SID = "LokiTelemetryDenyCloudWatchLogs"


def credential_statements(fn: lambda_.Function, source: CredentialSource) -> list[iam.PolicyStatement]:
    """The statements that let ``fn`` read ``source`` and nothing else."""
    secret_arn = getattr(source, "secret_arn", None)
    if secret_arn is None:
        return [
            iam.PolicyStatement(
                actions=list(PARAMETER_ACTIONS),
                resources=[source.parameter_arn],  # type: ignore[union-attr]
            )
        ]
    # A secret imported by name has a partial ARN: Secrets Manager appends "-" and six
    # random characters, so the policy must match them (as ISecret.grant_read does).
    full_arn = getattr(source, "secret_full_arn", None)
    resource = full_arn if full_arn is not None else f"{secret_arn}-??????"
    statements = [iam.PolicyStatement(actions=list(SECRET_ACTIONS), resources=[resource])]
    key = getattr(source, "encryption_key", None)
    if key is not None:
        statements.append(
            iam.PolicyStatement(
                actions=list(KMS_ACTIONS),
                resources=[key.key_arn],
                # Only for decrypting through Secrets Manager, not the key in general.
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(fn).region}.amazonaws.com"}
                },
            )
        )
    return statements


def cloudwatch_deny() -> iam.PolicyStatement:
    """An explicit Deny of CloudWatch log writes, which wins over any Allow on the role."""
    return iam.PolicyStatement(
        sid=CLOUDWATCH_DENY_SID,
        effect=iam.Effect.DENY,
        actions=list(CLOUDWATCH_DENY_ACTIONS),
        # The function's log group name is a token that would make the role's policy depend
        # on the function (a cycle); "*" is safe because a Deny only ever takes permissions away.
        resources=["*"],
    )


def add_to_role(fn: lambda_.Function, statement: iam.PolicyStatement) -> bool:
    """Add ``statement`` to the function's role; False when the role cannot be changed."""
    role = fn.role
    if role is None:
        return False
    result = role.add_to_principal_policy(statement)
    if not result.statement_added:
        return False
    if isinstance(role, iam.Role):
        # A role of this app: the statement is in its default policy. Its dependable is a
        # DependencyGroup that CDK fills only when it splits the policy at synth, so it is
        # empty now and says nothing.
        return True
    # An immutable role (imported with mutable=False, or Role.without_policy_updates) answers
    # statement_added=True ("pretend it was") with an empty dependable; an imported mutable
    # role depends on the Policy that now holds the statement.
    dependable = result.policy_dependable
    return dependable is None or len(Dependable.of(dependable).dependency_roots) > 0
