"""Which functions the aspect instruments, and what it attaches to them."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack

from loki_telemetry_construct import WarningIds
from loki_telemetry_construct._contract import envvars
from tests.construct.apps import (
    LAYER_ARN,
    LOKI_URL,
    MainApp,
    Scenarios,
    annotation_paths,
    env_of,
    logical_id,
    props_of,
)

OUR_LAYER_ID = "LokiTelemetryExtensionLayer"


def _layer_refs(template: dict[str, Any], fn: Any) -> list[Any]:
    return props_of(template, fn).get("Layers", [])  # type: ignore[no-any-return]


def _our_layer_logical_ids(template: dict[str, Any], build: str = "python") -> list[str]:
    """Our layers of one build ("python", or "native" for both architectures)."""
    return [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::LayerVersion"
        and k.startswith(OUR_LAYER_ID)
        and k.startswith(OUR_LAYER_ID + "Native") == (build == "native")
    ]


def test_python_functions_on_both_architectures_get_one_layer_and_the_environment(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the shortest one-liner with_loki_logging(stack, loki_ip=..., batch_size=10)
    t = scenario_templates["Minimal"]
    (layer_id,) = _our_layer_logical_ids(t)
    for key in ("min_x86", "min_arm"):
        fn = scenarios.fns[key]
        # THEN each gets exactly our layer and exactly those two variables
        assert _layer_refs(t, fn) == [{"Ref": layer_id}]
        assert env_of(t, fn) == {envvars.LOKI_IP: "10.0.0.5", envvars.DISPATCH_MIN_BATCH_SIZE: "10"}
    assert props_of(t, scenarios.fns["min_arm"])["Architectures"] == ["arm64"]


def test_every_supported_python_function_in_the_representative_app_is_instrumented(
    main: MainApp, main_json: dict[str, Any]
) -> None:
    w = main.workload
    (layer_id,) = _our_layer_logical_ids(main_json)
    for fn in (w.py_x86, w.py_arm, w.py310, w.retained):
        assert _layer_refs(main_json, fn) == [{"Ref": layer_id}], fn.node.path
        assert env_of(main_json, fn)[envvars.LOKI_URL] == LOKI_URL


def test_one_layer_per_stack_and_build(main_json: dict[str, Any]) -> None:
    # The Python build for the Python 3.10-3.13 functions, the native x86_64 build for the
    # Node.js and python3.9 functions (no arm64 function outside the Python build here).
    assert len(_our_layer_logical_ids(main_json)) == 1
    assert len(_our_layer_logical_ids(main_json, "native")) == 1


def test_other_runtimes_in_the_representative_app_get_the_native_layer(
    main: MainApp, main_json: dict[str, Any]
) -> None:
    w = main.workload
    (native_id,) = _our_layer_logical_ids(main_json, "native")
    for fn in (w.nodejs, w.py39):
        assert _layer_refs(main_json, fn) == [{"Ref": native_id}], fn.node.path
        assert env_of(main_json, fn)[envvars.LOKI_URL] == LOKI_URL


def test_singleton_function_is_instrumented_once(main: MainApp, main_json: dict[str, Any]) -> None:
    singleton_fn = [
        r
        for k, r in main_json["Resources"].items()
        if k.startswith("SingletonLambda") and r["Type"] == "AWS::Lambda::Function"
    ]
    assert len(singleton_fn) == 1
    assert len(singleton_fn[0]["Properties"]["Layers"]) == 1
    assert envvars.LOKI_URL in singleton_fn[0]["Properties"]["Environment"]["Variables"]


def test_aspect_scoped_to_a_singleton_reaches_the_function_it_wraps(
    scenario_templates: dict[str, dict[str, Any]],
) -> None:
    # GIVEN two SingletonFunction wrappers of one uuid and the aspect on one wrapper only
    t = scenario_templates["SingletonScope"]
    fns = [r for r in t["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    # THEN the one underlying function has exactly one copy of the layer
    assert len(fns) == 1
    assert len(fns[0]["Properties"]["Layers"]) == 1
    assert fns[0]["Properties"]["Environment"]["Variables"][envvars.LOKI_IP] == "10.0.0.5"


def test_function_scope_leaves_siblings_alone(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t = scenario_templates["FunctionScope"]
    assert env_of(t, scenarios.fns["scope_only"])[envvars.LOKI_IP] == "10.0.0.5"
    assert "Layers" not in props_of(t, scenarios.fns["scope_other"])
    assert env_of(t, scenarios.fns["scope_other"]) == {}


def test_nested_stack_functions_get_their_own_stacks_layer(main: MainApp) -> None:
    from aws_cdk.assertions import Template

    nested = Stack.of(main.workload.nested_fn)
    t = Template.from_stack(nested).to_json()
    (layer_id,) = _our_layer_logical_ids(t)
    assert _layer_refs(t, main.workload.nested_fn) == [{"Ref": layer_id}]
    assert env_of(t, main.workload.nested_fn)[envvars.LOKI_URL] == LOKI_URL


def test_stage_scope_reaches_every_stack_in_it(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    for name in ("StageA", "StageB"):
        t = scenario_templates[name]
        assert len(_our_layer_logical_ids(t)) == 1
        assert env_of(t, scenarios.fns[name])[envvars.LOKI_IP] == "10.0.0.5"


def test_unsupported_functions_are_untouched(
    main: MainApp, main_json: dict[str, Any], baseline_json: dict[str, Any]
) -> None:
    w = main.workload
    for fn in (w.image, w.raw, w.excluded, w.legacy):
        assert props_of(main_json, fn) == props_of(baseline_json, fn), fn.node.path
    providers = {
        k: r
        for k, r in main_json["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and ("AutoDelete" in k or k.startswith("LogRetention"))
    }
    assert len(providers) == 2
    for k, r in providers.items():
        assert r == baseline_json["Resources"][k], k


def _warned(stack: Stack, warning_id: str) -> set[str]:
    return annotation_paths(stack, "warning", f".*\\[ack: {warning_id}\\].*")


def test_skipped_functions_are_warned_about_with_stable_ids(main: MainApp) -> None:
    w, st = main.workload, main.stack
    assert _warned(st, WarningIds.NON_PYTHON_RUNTIME) == set()  # extension="auto": native build
    assert _warned(st, WarningIds.UNSUPPORTED_PYTHON_RUNTIME) == set()
    assert _warned(st, WarningIds.CONTAINER_IMAGE) == {f"/{w.image.node.path}"}
    assert _warned(st, WarningIds.RAW_CFN_FUNCTION) == {f"/{w.raw.node.path}"}
    providers = _warned(st, WarningIds.CUSTOM_RESOURCE_PROVIDER)
    assert len(providers) == 2
    assert any("AutoDeleteObjects" in p for p in providers)
    assert any("/LogRetention" in p for p in providers)


def test_warnings_name_the_function_and_the_reason(scenarios: Scenarios) -> None:
    node_path = scenarios.fns["po_node"].node.path
    assert annotation_paths(
        scenarios.stacks["PythonOnly"],
        "warning",
        f".*skipped {node_path}: runtime nodejs22.x is not Python and extension='python'.*",
    )


def test_excluded_functions_are_not_warned_about(main: MainApp) -> None:
    for fn in (main.workload.excluded, main.workload.legacy):
        assert not annotation_paths(main.stack, "warning", f".*{fn.node.path}.*")


def test_include_selects_by_scope_and_predicate_and_exclude_wins(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, f = scenario_templates["Include"], scenarios.fns
    assert "Layers" in props_of(t, f["inc_in_scope"])
    assert "Layers" in props_of(t, f["inc_by_predicate"])
    assert "Layers" not in props_of(t, f["inc_not_selected"])
    assert "Layers" not in props_of(t, f["inc_but_excluded"])


def test_user_supplied_layer_is_used_instead_of_creating_one(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t = scenario_templates["UserLayer"]
    assert _our_layer_logical_ids(t) == []
    (ref,) = _layer_refs(t, scenarios.fns["user_layer"])
    # The layer lives in another stack, so CDK wires it with a cross-stack import.
    assert "Fn::ImportValue" in ref
    home = scenario_templates["LayerHome"]
    assert [r["Type"] for r in home["Resources"].values()].count("AWS::Lambda::LayerVersion") == 1


def test_layer_arn_is_imported_once_per_stack(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t = scenario_templates["ArnLayer"]
    assert _our_layer_logical_ids(t) == []
    for key in ("arn_a", "arn_b"):
        assert _layer_refs(t, scenarios.fns[key]) == [LAYER_ARN]
    stack = scenarios.stacks["ArnLayer"]
    imports = [c for c in stack.node.children if c.node.id.startswith(OUR_LAYER_ID + "Import")]
    assert len(imports) == 1


def test_deploy_time_tokens_pass_through(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    env = env_of(scenario_templates["Tokens"], scenarios.fns["tokens"])
    assert env[envvars.LOKI_URL] == {"Ref": "LokiUrl"}
    assert env[envvars.DISPATCH_MIN_BATCH_SIZE] == {"Ref": "BatchSize"}


def test_logical_ids_helper_matches_template(main: MainApp, main_json: dict[str, Any]) -> None:
    # Guards the helpers the other tests rely on.
    assert main_json["Resources"][logical_id(main.workload.py_x86)]["Type"] == "AWS::Lambda::Function"


def test_lambda_edge_functions_are_skipped_with_a_warning(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t = scenario_templates["Edge"]
    fns = {k: r for k, r in t["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    edge = [r for k, r in fns.items() if k.startswith("EdgeFn")]
    assert len(edge) == 1
    assert "Layers" not in edge[0]["Properties"]
    assert "Environment" not in edge[0]["Properties"]
    assert "Layers" in props_of(t, scenarios.fns["edge_sibling"])
    warned = _warned(scenarios.stacks["Edge"], WarningIds.LAMBDA_EDGE)
    assert len(warned) == 1
    assert next(iter(warned)).startswith("/Edge/EdgeFn")


def test_environment_is_removed_in_lambda_edge(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    # GIVEN a function used as Lambda@Edge that the aspect cannot recognise (imported role)
    # THEN synthesis succeeds because every variable is added with remove_in_edge=True
    fn = scenarios.fns["edge_by_hand"]
    assert env_of(scenario_templates["Edge"], fn) == {}
    removed = annotation_paths(scenarios.stacks["Edge"], "info", ".*Removed LOKI_IP environment variable.*")
    assert removed == {f"/{fn.node.path}"}


def test_acknowledged_warning_ids_silence_the_skips(scenarios: Scenarios) -> None:
    st = scenarios.stacks["Acknowledged"]
    assert not annotation_paths(st, "warning", ".*loki-telemetry-construct.*")


def test_excluding_a_singleton_wrapper_excludes_its_function(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t = scenario_templates["ExcludeSingleton"]
    fns = {k: r["Properties"] for k, r in t["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    (wrapped,) = [p for k, p in fns.items() if k.startswith("SingletonLambda")]
    assert "Layers" not in wrapped
    assert "Layers" in props_of(t, scenarios.fns["excl_other"])


def test_unusual_push_path_is_warned_about_once_per_stack(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    odd = _warned(scenarios.stacks["OddPath"], WarningIds.UNUSUAL_PUSH_PATH)
    assert odd == {"/OddPath"}
    assert annotation_paths(scenarios.stacks["OddPath"], "warning", ".*has the path '/loki'.*")
    assert _warned(scenarios.stacks["PromPath"], WarningIds.UNUSUAL_PUSH_PATH) == set()
    # A warning, not a refusal: the function is instrumented with the URL as given.
    env = env_of(scenario_templates["OddPath"], scenarios.fns["odd_path"])
    assert env[envvars.LOKI_URL] == "https://logs.example.com/loki"
