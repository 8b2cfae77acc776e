"""The high-water mark and the per-invoke volumes it keeps room for (the Go build reads the
same table: extension/native/internal/ext/testdata/high_water_mark.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from loki_telemetry_extension.invoke_volume import VOLUME_MEMORY, InvokeVolumes, high_water_mark

TABLE = Path(__file__).parents[2] / "extension/native/internal/ext/testdata/high_water_mark.json"
CASES: list[dict[str, Any]] = json.loads(TABLE.read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_high_water_mark(case: dict[str, Any]) -> None:
    args = (case["max_buffer_bytes"], case["percent"], case["largest_invoke"], case["previous_done"])
    assert high_water_mark(*args) == case["mark"]


def test_volumes_are_counted_from_one_runtime_done_to_the_next() -> None:
    v = InvokeVolumes()
    assert v.largest() == 0
    v.add(100)
    v.add(50)
    assert v.largest() == 150  # the invoke still being written counts
    v.invoke_done()
    v.add(20)
    assert v.largest() == 150
    v.invoke_done()
    for _ in range(VOLUME_MEMORY - 1):
        v.invoke_done()
    assert v.largest() == 20  # the 150-byte invoke is forgotten after VOLUME_MEMORY others
    v.invoke_done()
    assert v.largest() == 0
