"""Several LokiLogging aspects on one function: the more specific scope wins, and says so."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from loki_telemetry_construct import WarningIds
from loki_telemetry_construct._contract import envvars
from tests.construct.apps import Precedence, Scenarios, annotation_paths, env_of, props_of


def _ip(p: Precedence, key: str) -> str:
    fn = p.fns[key]
    stack = p.stacks["Inner"] if key != "app" else p.stacks["OuterOnly"]
    t = Template.from_stack(stack).to_json()
    assert len(props_of(t, fn)["Layers"]) == 1, key
    return str(env_of(t, fn)[envvars.LOKI_IP])


def test_innermost_scope_wins(precedence: Precedence) -> None:
    # GIVEN aspects on the App (10.0.0.1), on the stack Inner (10.0.0.2) and on the construct
    # Inner/Team (10.0.0.3)
    # THEN each function gets the settings of the innermost aspect that selects it
    assert _ip(precedence, "team") == "10.0.0.3"
    assert _ip(precedence, "stack") == "10.0.0.2"
    assert _ip(precedence, "app") == "10.0.0.1"


def test_an_inner_aspect_that_does_not_select_a_function_leaves_it_to_the_outer_one(
    precedence: Precedence,
) -> None:
    # The stack's aspect excludes NotIncludedFn: the App's aspect instruments it.
    assert _ip(precedence, "not_included") == "10.0.0.1"


def test_the_conflict_warning_names_both_settings(precedence: Precedence) -> None:
    inner = precedence.stacks["Inner"]
    warned = annotation_paths(inner, "warning", f".*\\[ack: {WarningIds.CONFLICTING_SETTINGS}\\].*")
    team, stack_fn = precedence.fns["team"], precedence.fns["stack"]
    # One warning per instrumented function that more than one aspect with different settings
    # selects, from the winner only (three reach TeamFn: one warning per loser); RetiredFn is
    # selected by both too, but skipped, so only its skip warning is there.
    layered = precedence.fns["layered"]
    assert warned == {f"/{team.node.path}", f"/{stack_fn.node.path}", f"/{layered.node.path}"}
    # Settings that differ only in the layer are named by the layer.
    assert annotation_paths(inner, "warning", ".*on 'Inner/Layered' \\(layer='arn:aws:lambda:.*") == {
        f"/{layered.node.path}"
    }
    retired = f"/{precedence.fns['retired'].node.path}"
    assert annotation_paths(inner, "warning", f".*\\[ack: {WarningIds.RETIRED_RUNTIME}\\].*") == {retired}
    message = (
        f".*{stack_fn.node.path} is selected by two LokiLogging aspects with different settings: "
        "on 'Inner' \\(LOKI_IP=10.0.0.2\\) and on the App \\(LOKI_IP=10.0.0.1\\)\\. "
        "The one on 'Inner' applies \\(the more specific scope wins\\).*"
    )
    assert annotation_paths(inner, "warning", message) == {f"/{stack_fn.node.path}"}
    assert annotation_paths(inner, "warning", ".*on 'Inner/Team' \\(LOKI_IP=10.0.0.3\\) and on 'Inner'.*")


def test_no_conflict_warning_without_a_conflict(precedence: Precedence) -> None:
    # AppFn is reached by the App's aspect only; NotIncludedFn is excluded by the stack's.
    outer = precedence.stacks["OuterOnly"]
    assert not annotation_paths(outer, "warning", ".*loki-telemetry-construct.*")
    path = precedence.fns["not_included"].node.path
    assert not annotation_paths(precedence.stacks["Inner"], "warning", f".*{path} is selected.*")


def test_singleton_wrapper_and_stack_aspects_give_one_layer_and_a_warning(
    scenarios: Scenarios, scenario_templates: dict[str, Any]
) -> None:
    # The wrapper is not a scope of the function CDK puts at the stack root, but reaching the
    # function through the wrapper, both aspects see each other: the wrapper's is more specific.
    t = scenario_templates["SingletonTwoAspects"]
    (fn,) = [r["Properties"] for r in t["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(fn["Layers"]) == 1
    assert fn["Environment"]["Variables"][envvars.LOKI_IP] == "10.0.0.7"
    st = scenarios.stacks["SingletonTwoAspects"]
    assert annotation_paths(
        st,
        "warning",
        ".*on 'SingletonTwoAspects/Wrapper' \\(LOKI_IP=10.0.0.7\\) and on 'SingletonTwoAspects'.*",
    )
