"""A syrupy snapshot of the representative stack, asset hashes normalised.

Review a change with ``pytest tests/construct/test_construct_snapshot.py --snapshot-update``
and read the diff: it is exactly what users' templates will gain or lose.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.construct.apps import MainApp

# Asset hashes (sha256 hex) differ with the extension's code and across CDK versions;
# everything else in the template is deterministic.
_HASH = re.compile(r"[0-9a-f]{64}")


def normalise(template: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_HASH.sub("<asset-hash>", json.dumps(template)))  # type: ignore[no-any-return]


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_representative_stack(main_json: dict[str, Any], snapshot_json: SnapshotAssertion) -> None:
    assert normalise(main_json) == snapshot_json


def test_representative_nested_stack(main: MainApp, snapshot_json: SnapshotAssertion) -> None:
    nested = Template.from_stack(Stack.of(main.workload.nested_fn)).to_json()
    assert normalise(nested) == snapshot_json


def test_normalisation_only_touches_hashes() -> None:
    h = "a" * 64
    assert normalise({"S3Key": f"{h}.zip", "n": 1}) == {"S3Key": "<asset-hash>.zip", "n": 1}
