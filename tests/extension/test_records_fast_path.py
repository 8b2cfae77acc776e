"""The inlined hot path in ``RecordConverter.convert`` must agree with the general path
(``_one``) it duplicates for speed: same entries (stream, time, line, metadata), same signals,
for any mix of records. The general path is the reference."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from loki_telemetry_extension.records import Converted, RecordConverter

SECOND = "2024-03-05T06:07:"
RID = "8f5e1c2a-1111-2222-3333-444455556666"


def _time() -> st.SearchStrategy[str]:
    lambda_shape = st.builds(lambda s, ms: f"{SECOND}{s:02d}.{ms:03d}Z",
                             st.integers(8, 9), st.integers(0, 999))
    # (no unparsable times: those take "now", which differs between the two runs)
    other = st.sampled_from(
        ["2024-03-05T08:07:08.123+02:00", "2024-03-05T06:07:08Z", "2024-03-05T06:07:09.5Z"])
    return st.one_of(lambda_shape, lambda_shape, lambda_shape, other)


_lines = st.one_of(
    st.sampled_from(["x", "y", "", "\n", "[1, 2]", "12 not node", "a\r\n"]),
    st.builds(lambda lvl, m: f"[{lvl}]\t2024-03-05T06:07:08.123Z\t{RID}\t{m}\n",
              st.sampled_from(["INFO", "ERROR", "debug", "NOPE"]), st.text(max_size=5)),
    st.builds(lambda lvl, m: f"2024-03-05T06:07:08.123Z\t{RID}\t{lvl}\t{m}\n",
              st.sampled_from(["INFO", "WARN", "nope"]), st.text(max_size=5)),
    st.text(max_size=30),
    st.text(min_size=70, max_size=90),  # above the test's max_line_bytes // 4: general path (split)
)


def _item() -> st.SearchStrategy[dict[str, Any]]:
    function = st.builds(lambda t, r: {"time": t, "type": "function", "record": r}, _time(), _lines)
    start = st.builds(lambda t, r: {"time": t, "type": "platform.start", "record": {"requestId": r}},
                      _time(), st.sampled_from(["r1", "r2", RID]))
    as_json = st.builds(lambda t, m: {"time": t, "type": "function",
                                      "record": {"message": m, "level": "INFO", "requestId": "rj"}},
                        _time(), st.sampled_from(["x", "j"]))
    return st.one_of(function, function, function, start, as_json)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_item(), max_size=12), min_size=1, max_size=4), st.booleans())
def test_fast_and_general_paths_agree(deliveries: list[list[dict[str, Any]]], by_start: bool) -> None:
    args: dict[str, Any] = {"ship_platform": True, "ship_extension": False, "max_line_bytes": 256,
                            "attribute_by_start": by_start}
    fast, general = RecordConverter(**args), RecordConverter(**args)
    for items in deliveries:
        got = fast.convert(json.dumps(items).encode())
        want = Converted()
        for item in json.loads(json.dumps(items)):
            general._one(item, want)
        assert [e[:3] for e in got.entries] == [e[:3] for e in want.entries]
        assert [e[3] for e in got.entries] == [e[3] for e in want.entries]
        assert got.runtime_done == want.runtime_done
        assert got.lambda_dropped_records == want.lambda_dropped_records
