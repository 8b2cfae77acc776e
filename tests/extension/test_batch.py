"""batch: line splitting, request encoding and the bounded buffer."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loki_telemetry_extension.batch import (
    Buffer,
    encode_json,
    encode_requests,
    entry_size,
    fold_metadata,
    pack,
    split_line,
)

LABELS = [
    {"source": "lambda", "function": "f"},
    {"source": "lambda", "function": "f", "type": "platform"},
    {"source": "lambda", "function": "f", "type": "extension"},
]


def test_short_line_is_not_split() -> None:
    assert split_line("abc", 1024) == ["abc"]


@given(st.text(min_size=0, max_size=3000), st.integers(64, 1500))
def test_split_parts_fit_and_rejoin(line: str, limit: int) -> None:
    parts = split_line(line, limit)
    assert all(len(p.encode("utf-8", "surrogatepass")) <= limit for p in parts)
    if len(parts) == 1:
        assert parts == [line]
    else:
        n = len(parts)
        bodies = [p[: -len(f" [split {i}/{n}]")] for i, p in enumerate(parts, 1)]
        assert all(p.endswith(f" [split {i}/{n}]") for i, p in enumerate(parts, 1))
        assert "".join(bodies) == line


def test_split_never_cuts_a_multibyte_character() -> None:
    parts = split_line("日" * 1000, 100)
    assert "".join(p.split(" [split")[0] for p in parts) == "日" * 1000


def test_encode_json_shape_with_and_without_metadata() -> None:
    entries = [(0, 1, "a", {"request_id": "r"}), (1, 2, "START", None), (0, 3, "b", None)]
    body = json.loads(encode_json(entries, LABELS, metadata=True))
    assert body == {
        "streams": [
            {"stream": LABELS[0], "values": [["1", "a", {"request_id": "r"}], ["3", "b"]]},
            {"stream": LABELS[1], "values": [["2", "START"]]},
        ]
    }
    folded = json.loads(encode_json(entries, LABELS, metadata=False))
    assert folded["streams"][0]["values"][0] == ["1", "a request_id=r"]


def test_fold_metadata_skips_what_the_line_already_says() -> None:
    assert (
        fold_metadata("[INFO]\tt\tr-1\tmsg", {"level": "INFO", "request_id": "r-1"}) == "[INFO]\tt\tr-1\tmsg"
    )
    assert fold_metadata("plain", {"request_id": "r-1"}) == "plain request_id=r-1"
    assert fold_metadata("plain", None) == "plain"


def test_encode_requests_are_gzip_and_within_the_limit() -> None:
    entries = [(0, i, 'é"\\' * 300 + str(i), None) for i in range(2000)]  # escaping inflates the JSON
    reqs = encode_requests(pack(entries, 0.0), LABELS, metadata=True, max_bytes=64 * 1024)
    assert len(reqs) > 1
    seen: list[str] = []
    for chunk, body in reqs:
        raw = gzip.decompress(body)
        assert len(raw) <= 64 * 1024
        values = [v for s in json.loads(raw)["streams"] for v in s["values"]]
        assert len(values) == len(chunk)
        seen.extend(v[1] for v in values)
    assert seen == [e[2] for e in entries]


def _ts_of(item: tuple) -> int:  # type: ignore[type-arg]
    return int(json.loads(item[0] + b"]")[0])


def test_buffer_drops_oldest_when_full_and_counts() -> None:
    size = entry_size((0, 10, "x" * 100, None))
    buf = Buffer(max_bytes=10 * size)
    dropped = buf.add([(0, 10 + i, "x" * 100, None) for i in range(15)], now=1.0)
    assert dropped == 5 and len(buf) == 10
    taken = buf.take(1 << 30)
    assert [_ts_of(t) for t in taken] == list(range(15, 25))


def test_buffer_counts_inflight_bytes_against_the_limit() -> None:
    buf = Buffer(max_bytes=4 * entry_size((0, 0, "y" * 10, None)))
    buf.add([(0, 0, "y" * 10, None) for i in range(4)], now=0.0)
    taken = buf.take(1 << 30)
    assert buf.add([(0, 9, "y" * 10, None)], now=1.0) == 1  # in-flight entries still hold memory
    buf.finish(taken)
    assert buf.held_bytes == 0


def test_buffer_take_respects_size_but_takes_at_least_one() -> None:
    buf = Buffer(max_bytes=1 << 30)
    buf.add([(0, 0, "z" * 1000, None) for i in range(10)], now=0.0)
    assert len(buf.take(3 * entry_size((0, 0, "z" * 1000, None)))) == 3
    assert len(buf.take(1)) == 1


def test_leftover_goes_back_to_the_front_in_order() -> None:
    buf = Buffer(max_bytes=1 << 30)
    buf.add([(0, i, "l", None) for i in range(5)], now=0.0)
    taken = buf.take(3 * entry_size((0, 0, "l", None)))
    buf.finish(taken, [taken[0], taken[2]])  # the middle one was delivered
    assert [_ts_of(t) for t in buf.take(1 << 30)] == [0, 2, 3, 4]
    assert buf.queued_bytes == 0


def test_queued_entries_cost_what_the_buffer_counts() -> None:
    """LOKI_MAX_BUFFER_BYTES bounds real memory: a full buffer holds no more than it counts
    (measured with tracemalloc; the entries as the converter makes them are freed)."""
    import gc
    import tracemalloc

    for width in (20, 100, 1000):
        lines = [f"{i:08d} " + "w" * width for i in range(5000)]
        buf = Buffer(max_bytes=1 << 40)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            buf.add([(0, 1_700_000_000_000_000_000 + i, line, None) for i, line in enumerate(lines)], 1.0)
            gc.collect()
            real = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert real <= buf.held_bytes * 1.05, (width, real, buf.held_bytes)
        # and the count is not a gross over-estimate either (the buffer would hold too little)
        assert real >= buf.held_bytes * 0.85, (width, real, buf.held_bytes)


@pytest.mark.parametrize("n", [0, 1])
def test_oldest_arrival(n: int) -> None:
    buf = Buffer(max_bytes=1 << 20)
    if n:
        buf.add([(0, 0, "a", None)], now=5.0)
        buf.add([(0, 0, "b", None)], now=7.0)
    assert buf.oldest_arrival() == (5.0 if n else None)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2]),
            st.integers(0, 2**63),
            st.text(),
            st.none() | st.dictionaries(st.sampled_from(["level", "request_id"]), st.text(), min_size=1),
        ),
        max_size=20,
    ),
    st.booleans(),
)
def test_encode_json_matches_the_reference_encoding(entries: list, metadata: bool) -> None:  # type: ignore[type-arg]
    body = json.loads(encode_json(entries, LABELS, metadata=metadata).decode("utf-8", "surrogatepass"))
    expected: dict[int, list[list[object]]] = {}
    for stream, ts, line, meta in entries:
        if metadata:
            value: list[object] = [str(ts), line, meta] if meta else [str(ts), line]
        elif meta:
            value = [str(ts), fold_metadata(line, meta)]
        else:
            value = [str(ts), fold_metadata(line, meta)]
        expected.setdefault(stream, []).append(value)
    assert body == {"streams": [{"stream": LABELS[s], "values": v} for s, v in expected.items()]}
