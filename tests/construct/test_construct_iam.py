"""Credential grants, the CloudWatch Deny and cdk-nag: what the aspect does to IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from loki_telemetry_construct import WarningIds
from loki_telemetry_construct._contract import envvars
from tests.construct.apps import MainApp, Scenarios, annotation_paths, env_of, logical_id


def _role_statements(template: dict[str, Any], fn: Any) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to ``fn``'s role."""
    role_id = template["Resources"][logical_id(fn)]["Properties"]["Role"]["Fn::GetAtt"][0]
    out: list[dict[str, Any]] = []
    for r in template["Resources"].values():
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]:
            out.extend(r["Properties"]["PolicyDocument"]["Statement"])
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


def test_basic_auth_secret_arn_goes_to_env_and_role_may_read_only_that_secret(
    main: MainApp, main_json: dict[str, Any]
) -> None:
    fn = main.workload.py_x86
    secret_id = Stack.of(main.secret).get_logical_id(main.secret.node.default_child)  # type: ignore[arg-type]
    assert env_of(main_json, fn)[envvars.LOKI_BASIC_AUTH_SECRET_ARN] == {"Ref": secret_id}
    allows = [s for s in _role_statements(main_json, fn) if s["Effect"] == "Allow"]
    secret_reads = [s for s in allows if any(a.startswith("secretsmanager:") for a in _actions(s))]
    assert secret_reads == [
        {"Action": "secretsmanager:GetSecretValue", "Effect": "Allow", "Resource": {"Ref": secret_id}}
    ]


def test_customer_managed_key_is_decryptable_only_via_secrets_manager(
    main: MainApp, main_json: dict[str, Any]
) -> None:
    (kms,) = [s for s in _role_statements(main_json, main.workload.py_x86) if "kms:Decrypt" in _actions(s)]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    assert _actions(kms) == ["kms:Decrypt"]


def test_skipped_functions_get_no_grant(main: MainApp, main_json: dict[str, Any]) -> None:
    for fn in (main.workload.image, main.workload.excluded):
        assert not [s for s in _role_statements(main_json, fn) if "secretsmanager" in json.dumps(s)]


def test_secret_value_never_appears_in_the_template(main_json: dict[str, Any]) -> None:
    functions = [r for r in main_json["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    dumped = json.dumps(functions)
    assert "resolve:secretsmanager" not in dumped
    assert "resolve:ssm-secure" not in dumped
    assert "SecretString" not in dumped


def test_ssm_bearer_token_parameter_is_granted_get_parameter_only(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, fn = scenario_templates["BearerSsm"], scenarios.fns["bearer"]
    arn = env_of(t, fn)[envvars.LOKI_BEARER_TOKEN_SECRET_ARN]
    assert "parameter/loki/token" in json.dumps(arn)
    reads = [s for s in _role_statements(t, fn) if any(a.startswith("ssm:") for a in _actions(s))]
    assert len(reads) == 1
    assert _actions(reads[0]) == ["ssm:GetParameter"]
    assert reads[0]["Resource"] == arn


def test_cloudwatch_deny_is_on_every_instrumented_role_only(main: MainApp, main_json: dict[str, Any]) -> None:
    def denies(fn: Any) -> list[dict[str, Any]]:
        return [s for s in _role_statements(main_json, fn) if s["Effect"] == "Deny"]

    for fn in (main.workload.py_x86, main.workload.py_arm, main.workload.retained, main.workload.nodejs):
        assert denies(fn) == [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Deny",
                "Resource": "*",
                "Sid": "LokiTelemetryDenyCloudWatchLogs",
            }
        ], fn.node.path
    for fn in (main.workload.image, main.workload.excluded):
        assert denies(fn) == []


def test_no_deny_by_default(scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]) -> None:
    t = scenario_templates["Minimal"]
    assert "Deny" not in json.dumps(t)


def test_immutable_role_is_warned_about(scenarios: Scenarios) -> None:
    fn = scenarios.fns["immutable"]
    assert annotation_paths(
        scenarios.stacks["ImmutableRole"], "warning", f".*\\[ack: {WarningIds.IMMUTABLE_ROLE}\\].*"
    ) == {f"/{fn.node.path}"}


def test_roles_that_can_be_changed_get_no_immutable_role_warning(main: MainApp) -> None:
    # GIVEN the representative app: a credential secret and the CloudWatch Deny on roles CDK made
    # THEN the grants are there (other tests) and no function is told to do them by hand
    assert annotation_paths(main.stack, "warning", f".*\\[ack: {WarningIds.IMMUTABLE_ROLE}\\].*") == set()


def test_only_roles_that_really_cannot_change_are_warned_about(
    scenarios: Scenarios, scenario_templates: dict[str, Any]
) -> None:
    # GIVEN an imported mutable role, a role's without_policy_updates() view and a default role
    st, f = scenarios.stacks["Roles"], scenarios.fns
    warned = annotation_paths(st, "warning", f".*\\[ack: {WarningIds.IMMUTABLE_ROLE}\\].*")
    # THEN only the role that cannot be changed is warned about
    assert warned == {f"/{f['role_without_updates'].node.path}"}
    # AND the imported mutable role really got the Deny, in a policy of this stack
    policies = [
        r["Properties"]
        for r in scenario_templates["Roles"]["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == ["m"]
    ]
    assert [s["Sid"] for p in policies for s in p["PolicyDocument"]["Statement"]] == [
        "LokiTelemetryDenyCloudWatchLogs"
    ]


def _depends_on(resource: dict[str, Any]) -> set[str]:
    """Logical ids a resource depends on: Ref, Fn::GetAtt, ${X} in Fn::Sub, DependsOn."""
    out: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if "Ref" in v and isinstance(v["Ref"], str):
                out.add(v["Ref"])
            if "Fn::GetAtt" in v:
                out.add(v["Fn::GetAtt"][0])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(resource.get("Properties", {}))
    deps = resource.get("DependsOn", [])
    out.update([deps] if isinstance(deps, str) else deps)
    return out


def test_no_dependency_cycle_with_a_cmk_secret_and_a_nested_stack(main_json: dict[str, Any]) -> None:
    # GIVEN a KMS-encrypted secret in the parent and an instrumented function in a nested stack
    # (ISecret.grant_read would write the nested role into the key policy: a cycle).
    resources = main_json["Resources"]
    graph = {k: _depends_on(r) & resources.keys() for k, r in resources.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail(f"dependency cycle: {' -> '.join([*trail, node, nxt])}")
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def _nag_findings(stack: Stack) -> set[tuple[str, str]]:
    from cdk_nag import AwsSolutionsChecks

    report = AwsSolutionsChecks().validate_scope(stack)
    return {(v.rule_name, r.construct_path or "") for v in report.violations for r in v.violating_resources}


def test_cdk_nag_finds_nothing_the_library_added(main: MainApp, baseline: MainApp) -> None:
    # GIVEN the representative app with and without the aspect, both checked by AwsSolutionsChecks
    with_aspect = _nag_findings(main.stack)
    without = _nag_findings(baseline.stack)
    # THEN the aspect introduced no finding (the baseline's belong to the user's own resources)
    assert with_aspect - without == set()
    # and the check really ran (the baseline has the usual Lambda findings)
    assert any(rule.startswith("AwsSolutions-L1") for rule, _ in without)


def test_layer_itself_is_nag_clean(scenarios: Scenarios) -> None:
    findings = _nag_findings(scenarios.stacks["LayerHome"])
    assert findings == set()


def test_nested_stack_template_has_the_grant(main: MainApp) -> None:
    nested = Template.from_stack(Stack.of(main.workload.nested_fn)).to_json()
    statements = _role_statements(nested, main.workload.nested_fn)
    assert any("secretsmanager:GetSecretValue" in _actions(s) for s in statements)


def test_secret_imported_by_name_is_granted_with_the_random_suffix_wildcard(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, fn = scenario_templates["PartialSecret"], scenarios.fns["partial"]
    arn = env_of(t, fn)[envvars.LOKI_BASIC_AUTH_SECRET_ARN]
    (read,) = [s for s in _role_statements(t, fn) if "secretsmanager:GetSecretValue" in _actions(s)]
    # The env var holds the partial ARN (GetSecretValue accepts it); the policy must match
    # the full ARN, which ends in "-" and six random characters.
    assert arn == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":secretsmanager:eu-west-1:123456789012:secret:loki/basic-auth",
            ],
        ]
    }
    assert read["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":secretsmanager:eu-west-1:123456789012:secret:loki/basic-auth-??????",
            ],
        ]
    }
