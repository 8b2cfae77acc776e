"""Property tests: random mixes of valid and invalid entries are split exactly as Loki would split them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loki_receiver_http import now_ns, push

from harness.loki_receiver import Limits, LokiReceiver

MAX_LINE = 64
DAY_NS = 86_400 * 10**9

# Each kind: (what to push, the discard reason it must produce, or None when it must be stored).
KINDS = {
    "ok": None,
    "ok_meta": None,
    "long": "line_too_long",
    "old": "greater_than_max_sample_age",
    "future": "too_far_in_future",
}


@pytest.fixture(scope="module")
def loki() -> Iterator[LokiReceiver]:
    # Dedupe and the unordered window are exercised elsewhere; here every entry is independent.
    with LokiReceiver(limits=Limits(max_line_size=MAX_LINE, dedupe=False, unordered_writes_window_s=0)) as r:
        yield r


def make_entry(kind: str, i: int, now: int) -> list[Any]:
    ts = {"old": now - 8 * DAY_NS, "future": now + DAY_NS}.get(kind, now) + i
    line = "L" * (MAX_LINE + 1) if kind == "long" else f"{kind}-{i}"
    return [str(ts), line, {"i": str(i)}] if kind == "ok_meta" else [str(ts), line]


@settings(max_examples=60, deadline=None)
@given(
    streams=st.lists(st.lists(st.sampled_from(sorted(KINDS)), max_size=8), min_size=1, max_size=4),
    encoding=st.sampled_from(["", "gzip", "deflate"]),
)
def test_partial_acceptance_splits_every_push_exactly(
    loki: LokiReceiver, streams: list[list[str]], encoding: str
) -> None:
    loki.reset()
    now = now_ns()
    body = []
    expected_lines: list[str] = []
    expected_discards: dict[str, int] = {}
    i = 0
    for n, kinds in enumerate(streams):
        values = []
        for kind in kinds:
            entry = make_entry(kind, i, now)
            values.append(entry)
            reason = KINDS[kind]
            if reason is None:
                expected_lines.append(entry[1])
            else:
                expected_discards[reason] = expected_discards.get(reason, 0) + 1
            i += 1
        body.append(({"stream": str(n)}, values))

    reply = push(loki.url, body, encoding=encoding)

    assert reply.status == (400 if expected_discards else 204), reply.text
    assert sorted(loki.lines()) == sorted(expected_lines)
    assert loki.discarded == expected_discards
    record = loki.push_requests()[-1]
    assert (record.entries_received, record.entries_accepted) == (i, len(expected_lines))
