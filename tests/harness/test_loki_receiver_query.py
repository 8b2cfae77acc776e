"""Query side of the Loki receiver: stream selectors, query_range, labels, and the in-process helpers."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loki_receiver_http import get, now_ns, push, query_range

from harness.loki_receiver import LokiReceiver, SelectorError, parse_selector

A = {"source": "lambda", "function": "ingest"}
B = {"source": "lambda", "function": "report", "type": "platform"}
C = {"source": "ec2", "function": "ingest-v2"}


_T0: dict[str, int] = {}


@pytest.fixture(scope="module")
def loki() -> Iterator[LokiReceiver]:
    """One receiver holding a fixed data set: 5 lines in A, 3 in B, 2 in C, 1 ns apart."""
    with LokiReceiver() as r:
        t0 = now_ns() - 60 * 10**9
        push(r.url, [(A, [[str(t0 + i), f"a{i}", {"request_id": f"r{i % 2}"}] for i in range(5)])])
        push(r.url, [(B, [[str(t0 + 10 + i), f"b{i}"] for i in range(3)])])
        push(r.url, [(C, [[str(t0 + 20 + i), f"c{i}"] for i in range(2)])])
        assert r.count() == 10
        _T0["t0"] = t0
        yield r


def values(reply_json: dict[str, object]) -> list[str]:
    result = reply_json["data"]["result"]  # type: ignore[index]
    return [v[1] for s in result for v in s["values"]]


def all_lines(reply_json: dict[str, object]) -> list[str]:
    """Lines across streams in Loki's global order is not guaranteed; compare as a sorted list."""
    return sorted(values(reply_json))


# --- selector parsing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ('{source="lambda"}', ["A", "B"]),
        ('{function=~"ingest.*"}', ["A", "C"]),
        ('{function=~"ingest"}', ["A"]),  # anchored
        ('{source="lambda", function!="report"}', ["A"]),
        ('{function!~"ing.*", source=~".+"}', ["B"]),
        ('{type=""}', None),  # empty-compatible only: rejected
        ('{source=~".+", type=""}', ["A", "C"]),  # missing label matches ""
        ("{function=`ingest`}", ["A"]),
        ('{ source = "ec2" }', ["C"]),
        ('{function=~"ingest|report"}', ["A", "B"]),
    ],
)
def test_selector_matching(text: str, matches: list[str] | None) -> None:
    if matches is None:
        with pytest.raises(SelectorError, match="at least one regexp or equality matcher"):
            parse_selector(text)
        return
    sel = parse_selector(text)
    assert [n for n, ls in (("A", A), ("B", B), ("C", C)) if sel.matches(ls)] == matches


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{source="lambda"} |= "x"', "pipelines"),
        ('count_over_time({a="b"}[1m])', "only LogQL stream selectors"),
        ('{source="lambda"', "expecting '}'"),
        ('{1a="b"}', "expecting label name"),
        ('{a=="b"}', "expecting string"),
        ('{a="b}', "unterminated string"),
        ('{a=~"("}', "invalid regex"),
        ("{}", "at least one regexp or equality matcher"),
        ('{a="\\q"}', "invalid escape"),
    ],
)
def test_selector_errors_are_clear(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError, match=None) as err:
        parse_selector(text)
    assert fragment in str(err.value)


_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(labels=st.dictionaries(_names, _values, min_size=1, max_size=5), data=st.data())
def test_selector_roundtrip_and_semantics(labels: dict[str, str], data: st.DataObject) -> None:
    # GIVEN a label set and a random matcher on one of its labels (or another value)
    name = data.draw(st.sampled_from(sorted(labels)))
    other = data.draw(_values)
    op = data.draw(st.sampled_from(["=", "!=", "=~", "!~"]))
    value = labels[name] if data.draw(st.booleans()) else other
    pattern = re.escape(value) if op in ("=~", "!~") else value
    escaped = pattern.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    text = "{" + f'{name}{op}"{escaped}"' + "}"
    try:
        sel = parse_selector(text)
    except SelectorError as exc:
        # Only Loki's "must not match everything" rule may refuse a well-formed selector.
        assert "empty-compatible" in str(exc)
        return
    # THEN it means what Loki means, and printing it parses back to the same selector
    expected = {"=": labels[name] == value, "!=": labels[name] != value,
                "=~": labels[name] == value, "!~": labels[name] != value}[op]
    assert sel.matches(labels) is expected
    assert parse_selector(str(sel)) == sel


# --- query_range --------------------------------------------------------------


def test_query_range_shape_and_default_backward_order(loki: LokiReceiver) -> None:
    t0 = _T0["t0"]
    reply = query_range(loki.base_url, '{function="report"}')
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    doc = reply.json()
    assert doc["status"] == "success"
    assert doc["data"]["resultType"] == "streams"
    assert doc["data"]["result"] == [
        {"stream": B, "values": [[str(t0 + 12), "b2"], [str(t0 + 11), "b1"], [str(t0 + 10), "b0"]]}
    ]


def test_query_range_forward_and_limit(loki: LokiReceiver) -> None:
    doc = query_range(loki.base_url, '{source="lambda"}', direction="FORWARD", limit="4").json()
    assert all_lines(doc) == ["a0", "a1", "a2", "a3"]  # split in two streams by request_id
    doc = query_range(loki.base_url, '{source="lambda"}', limit="2").json()
    assert values(doc) == ["b2", "b1"]


def test_query_range_folds_structured_metadata_into_stream_labels(loki: LokiReceiver) -> None:
    doc = query_range(loki.base_url, '{function="ingest"}', direction="forward").json()
    streams = {s["stream"]["request_id"]: [v[1] for v in s["values"]] for s in doc["data"]["result"]}
    assert streams == {"r0": ["a0", "a2", "a4"], "r1": ["a1", "a3"]}


def test_query_range_categorize_labels_flag_returns_metadata_separately(loki: LokiReceiver) -> None:
    reply = query_range(loki.base_url, '{function="ingest"}',
                        headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"}, direction="forward")
    doc = reply.json()
    assert doc["data"]["encodingFlags"] == ["categorize-labels"]
    [stream] = doc["data"]["result"]
    assert stream["stream"] == A
    assert stream["values"][0] == [str(_T0["t0"]), "a0", {"structuredMetadata": {"request_id": "r0"}}]


def test_query_range_time_window_end_is_exclusive(loki: LokiReceiver) -> None:
    t0 = _T0["t0"]
    doc = query_range(loki.base_url, '{source="lambda"}', start=str(t0 + 1), end=str(t0 + 11)).json()
    assert all_lines(doc) == ["a1", "a2", "a3", "a4", "b0"]


@pytest.mark.parametrize("fmt", ["seconds", "float", "rfc3339"])
def test_query_range_accepts_loki_time_formats(loki: LokiReceiver, fmt: str) -> None:
    from datetime import datetime, timezone

    start_s = _T0["t0"] // 10**9 - 5
    end_s = start_s + 3600
    conv = {
        "seconds": str,
        "float": lambda s: f"{s}.0",
        "rfc3339": lambda s: datetime.fromtimestamp(s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }[fmt]
    doc = query_range(loki.base_url, '{source=~".+"}', start=conv(start_s), end=conv(end_s)).json()
    assert len(values(doc)) == 10


def test_query_range_default_window_is_the_last_hour() -> None:
    with LokiReceiver() as r:
        now = now_ns()
        push(r.url, [(A, [[str(now - 2 * 3600 * 10**9), "two hours ago"], [str(now - 10**9), "just now"]])])
        assert values(query_range(r.base_url, '{source="lambda"}').json()) == ["just now"]
        assert len(values(query_range(r.base_url, '{source="lambda"}', since="3h").json())) == 2


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"query": '{a="b"} | json'}, "pipelines"),
        ({"query": '{a=~".*"}'}, "empty-compatible"),
        ({"query": '{a="b"}', "limit": "5001"}, "max entries limit per query exceeded"),
        ({"query": '{a="b"}', "limit": "0"}, "limit must be a positive value"),
        ({"query": '{a="b"}', "direction": "sideways"}, "invalid direction"),
        ({"query": '{a="b"}', "start": "yesterday"}, "cannot parse"),
        ({"query": '{a="b"}', "start": "20", "end": "10"}, "end timestamp must not be before"),
        ({"query": ""}, "only LogQL stream selectors"),
    ],
)
def test_query_range_errors_are_400(loki: LokiReceiver, params: dict[str, str], fragment: str) -> None:
    reply = get(loki.base_url, "/loki/api/v1/query_range", params)
    assert reply.status == 400
    assert fragment in reply.text


def test_query_range_accepts_post_form(loki: LokiReceiver) -> None:
    from urllib.parse import urlencode

    from loki_receiver_http import request

    reply = request(loki.base_url + "/loki/api/v1/query_range", method="POST",
                    data=urlencode({"query": '{source="ec2"}'}).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 200
    assert values(reply.json()) == ["c1", "c0"]


def test_query_tenants_are_isolated_with_tenancy() -> None:
    with LokiReceiver(require_tenant=True) as r:
        ts = now_ns()
        push(r.url, [(A, [[str(ts), "t1 line"]])], headers={"X-Scope-OrgID": "t1"})
        push(r.url, [(A, [[str(ts), "t2 line"]])], headers={"X-Scope-OrgID": "t2"})
        assert query_range(r.base_url, '{source="lambda"}').status == 401
        doc = query_range(r.base_url, '{source="lambda"}', headers={"X-Scope-OrgID": "t2"}).json()
        assert values(doc) == ["t2 line"]


def test_query_without_tenancy_sees_every_push_like_a_single_tenant_loki() -> None:
    with LokiReceiver() as r:
        ts = now_ns()
        push(r.url, [(A, [[str(ts), "with header"]])], headers={"X-Scope-OrgID": "t1"})
        push(r.url, [(A, [[str(ts + 1), "without"]])])
        assert len(values(query_range(r.base_url, '{source="lambda"}').json())) == 2


# --- labels, series, ready ----------------------------------------------------


def test_labels(loki: LokiReceiver) -> None:
    assert get(loki.base_url, "/loki/api/v1/labels").json() == {
        "status": "success", "data": ["function", "source", "type"]}


def test_ready_and_unknown_path(loki: LokiReceiver) -> None:
    ready = get(loki.base_url, "/ready")
    assert (ready.status, ready.text) == (200, "ready\n")
    assert get(loki.base_url, "/nope").status == 404


# --- in-process helpers -------------------------------------------------------


def test_count_and_entries_accept_selector_strings_and_dicts(loki: LokiReceiver) -> None:
    assert loki.count() == 10
    assert loki.count('{source="lambda"}') == 8
    assert loki.count({"function": "ingest"}) == 5
    assert [e.line for e in loki.entries({"source": "ec2"})] == ["c0", "c1"]
    assert loki.entries('{function="ingest"}')[1].metadata == {"request_id": "r1"}


def test_wait_for_count_wakes_on_push_and_times_out() -> None:
    with LokiReceiver() as r:
        assert r.wait_for_count(1, timeout=0.05) is False
        started = threading.Event()
        result: list[bool] = []

        def waiter() -> None:
            started.set()
            result.append(r.wait_for_count(3, '{function="ingest"}', timeout=30))

        t = threading.Thread(target=waiter)
        t.start()
        assert started.wait(5)
        ts = now_ns()
        push(r.url, [(B, [[str(ts), "other stream"]])])
        push(r.url, [(A, [[str(ts + i), f"x{i}"] for i in range(3)])])
        # The waiter must be woken by the pushes, long before its own 30 s timeout.
        t.join(10)
        assert not t.is_alive()
        assert result == [True]


def test_buildinfo_reports_the_mode() -> None:
    with LokiReceiver() as v3, LokiReceiver(structured_metadata=False) as no_sm, \
            LokiReceiver(mode="2.7") as v27:
        assert get(v3.base_url, "/loki/api/v1/status/buildinfo").json()["version"] == "3.4.6"
        assert get(no_sm.base_url, "/loki/api/v1/status/buildinfo").json()["version"] == "2.9.17"
        assert get(v27.base_url, "/loki/api/v1/status/buildinfo").json()["version"] == "2.7.7"


def test_wait_for_requests_counts_pushes_whatever_their_status() -> None:
    with LokiReceiver() as r:
        assert r.wait_for_requests(1, timeout=0.05) is False
        push(r.url, raw=b"not json")
        get(r.base_url, "/ready")
        assert r.wait_for_requests(1, timeout=5)
        assert not r.wait_for_requests(2, timeout=0.05)
        assert r.wait_for_requests(2, timeout=5, push_only=False)
        assert [q.status for q in r.push_requests()] == [400]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1704067200", 1704067200 * 10**9),  # <= 10 digits: seconds
        ("1704067200000000001", 1704067200000000001),  # nanoseconds
        ("1704067200.25", 1704067200250000000),  # float seconds
        ("2024-01-01T00:00:00.123456789Z", 1704067200123456789),  # RFC3339Nano keeps nanoseconds
        ("2024-01-01T01:00:00+01:00", 1704067200 * 10**9),
    ],
)
def test_parse_time_formats(value: str, expected: int) -> None:
    from harness.loki_receiver.query import parse_time

    assert parse_time(value, 0) == expected


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00", "tomorrow", "1.2.3"])
def test_parse_time_rejects_what_loki_rejects(value: str) -> None:
    from harness.loki_receiver.query import QueryError, parse_time

    with pytest.raises(QueryError, match="cannot parse"):
        parse_time(value, 0)
