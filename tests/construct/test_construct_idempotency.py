"""The aspect is idempotent and never crashes synthesis."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects
from aws_cdk.assertions import Template

from loki_telemetry_construct import LokiLogging, WarningIds
from loki_telemetry_construct._contract import envvars
from loki_telemetry_construct.warning_ids import LAYER_ERROR_PREFIX
from tests.construct.apps import (
    LOKI_URL,
    Scenarios,
    annotation_paths,
    build_main,
    env_of,
    props_of,
    stand_in_layers,
)


def test_resynthesis_changes_nothing() -> None:
    # GIVEN the representative app, synthesized once
    built = build_main()
    first = Template.from_stack(built.stack).to_json()
    # WHEN it is synthesized again, and its annotations read (which synthesizes too),
    # and the same aspect is added a second time
    Aspects.of(built.app).add(built.aspect)
    annotation_paths(built.stack, "warning", ".*")
    second = Template.from_stack(built.stack).to_json()
    # THEN the template is identical, and each function has one copy of the layer
    assert second == first
    for r in second["Resources"].values():
        if r["Type"] == "AWS::Lambda::Function" and "Layers" in r["Properties"]:
            assert len(r["Properties"]["Layers"]) == 1


def test_applying_twice_with_the_same_settings_adds_one_layer_and_no_warning(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, fn = scenario_templates["Twice"], scenarios.fns["twice"]
    assert len(props_of(t, fn)["Layers"]) == 1
    assert not annotation_paths(scenarios.stacks["Twice"], "warning", ".*loki-telemetry-construct.*")


def test_conflicting_aspects_first_wins_and_warns(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, fn = scenario_templates["Conflict"], scenarios.fns["conflict"]
    assert len(props_of(t, fn)["Layers"]) == 1
    assert env_of(t, fn)[envvars.LOKI_IP] == "10.0.0.5"
    assert annotation_paths(
        scenarios.stacks["Conflict"], "warning", f".*\\[ack: {WarningIds.CONFLICTING_SETTINGS}\\].*"
    ) == {f"/{fn.node.path}"}


def test_five_layer_limit_is_an_error_annotation_not_a_crash(
    scenarios: Scenarios, scenario_templates: dict[str, dict[str, Any]]
) -> None:
    t, fn = scenario_templates["LayerLimit"], scenarios.fns["full"]
    # The function keeps its own five layers and gets no half-applied configuration.
    assert len(props_of(t, fn)["Layers"]) == 5
    assert env_of(t, fn) == {}
    errors = annotation_paths(
        scenarios.stacks["LayerLimit"], "error", f".*{LAYER_ERROR_PREFIX[1:-1]}.*5 layers.*"
    )
    assert errors == {f"/{fn.node.path}"}
    # CDK's own message ends with a period: the sentence is not doubled before "Fix".
    stack = scenarios.stacks["LayerLimit"]
    assert annotation_paths(stack, "error", r".*[a-z0-9]\. Fix: Lambda allows 5 layers.*") == errors
    assert not annotation_paths(stack, "error", r".*\.\. Fix.*")


def test_aspect_object_can_be_shared_between_stacks() -> None:
    # One LokiLogging instance on two apps' stacks: each stack gets its own layer.
    aspect = LokiLogging(loki_url=LOKI_URL)
    a, b = build_main(instrument=False, synth=False), build_main(instrument=False, synth=False)
    Aspects.of(a.stack).add(aspect)
    Aspects.of(b.stack).add(aspect)
    for built in (a, b):
        with stand_in_layers():
            t = Template.from_stack(built.stack).to_json()
        layers = [k for k, r in t["Resources"].items() if r["Type"] == "AWS::Lambda::LayerVersion"]
        # The Python build's layer and the native x86_64 one (Node.js and python3.9 functions).
        assert len(layers) == 2
        assert env_of(t, built.workload.py_x86)[envvars.LOKI_URL] == LOKI_URL
