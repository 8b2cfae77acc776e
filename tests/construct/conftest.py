"""Session-scoped synthesized apps: each App synth costs seconds of jsii time, so tests share them."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.construct.apps import MainApp, Precedence, Scenarios, build_main, build_precedence, build_scenarios


@pytest.fixture(scope="session")
def main() -> MainApp:
    built = build_main()
    built.app.synth()
    return built


@pytest.fixture(scope="session")
def baseline() -> MainApp:
    """The same app without the aspect: what "untouched" and "adds no finding" compare against."""
    built = build_main(
        instrument=False,
    )
    built.app.synth()
    return built


@pytest.fixture(scope="session")
def main_template(main: MainApp) -> Template:
    return Template.from_stack(main.stack)


@pytest.fixture(scope="session")
def main_json(main_template: Template) -> dict[str, Any]:
    return main_template.to_json()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def baseline_json(baseline: MainApp) -> dict[str, Any]:
    return Template.from_stack(baseline.stack).to_json()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def scenarios() -> Scenarios:
    built = build_scenarios()
    built.app.synth()
    return built


@pytest.fixture(scope="session")
def scenario_templates(scenarios: Scenarios) -> dict[str, dict[str, Any]]:
    return {name: Template.from_stack(st).to_json() for name, st in scenarios.stacks.items()}


@pytest.fixture(scope="session")
def precedence() -> Precedence:
    return build_precedence()
