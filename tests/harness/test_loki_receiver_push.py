"""Push path of the Loki receiver over real HTTP: encodings, status codes, Loki's validation rules."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator

import pytest
from loki_receiver_http import encode, get, now_ns, push, push_body, request

from harness.loki_receiver import Limits, LokiReceiver

LABELS = {"source": "lambda", "function": "f"}


@pytest.fixture(scope="module")
def loki() -> Iterator[LokiReceiver]:
    with LokiReceiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _fresh(loki: LokiReceiver) -> None:
    loki.reset()


# --- encodings and content types ---------------------------------------------


@pytest.mark.parametrize("encoding", ["", "gzip", "deflate"])
def test_push_json_with_each_encoding_is_stored_and_answered_204(loki: LokiReceiver, encoding: str) -> None:
    ts = now_ns()
    reply = push(loki.url, [(LABELS, [[str(ts), "hello"], [str(ts + 1), "world"]])], encoding=encoding)
    assert reply.status == 204, reply.text
    assert reply.body == b""
    stored = loki.entries()
    assert [(e.ts_ns, e.line, dict(e.labels)) for e in stored] == [
        (ts, "hello", LABELS),
        (ts + 1, "world", LABELS),
    ]
    assert loki.requests[-1].headers.get("content-encoding", "") == encoding


def test_push_gzip_with_several_members_is_read_whole(loki: LokiReceiver) -> None:
    ts = now_ns()
    body = push_body([(LABELS, [[str(ts), "multi-member"]])])
    half = len(body) // 2
    raw = gzip.compress(body[:half]) + gzip.compress(body[half:])
    reply = request(loki.url, data=raw, method="POST",
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status == 204, reply.text
    assert loki.lines() == ["multi-member"]


def test_push_deflate_must_be_raw_deflate_like_go_flate(loki: LokiReceiver) -> None:
    # zlib-wrapped data (RFC 1950) is not what Go's flate.NewReader reads: Loki answers 400.
    import zlib

    wrapped = zlib.compress(push_body([(LABELS, [[str(now_ns()), "x"]])]))
    reply = request(loki.url, data=wrapped, method="POST",
                    headers={"Content-Type": "application/json", "Content-Encoding": "deflate"})
    assert reply.status == 400
    assert loki.count() == 0


def test_push_with_unknown_content_encoding_is_400(loki: LokiReceiver) -> None:
    reply = push(loki.url, [(LABELS, [[str(now_ns()), "x"]])], headers={"Content-Encoding": "br"})
    assert reply.status == 400
    assert reply.text == 'Content-Encoding "br" not supported\n'
    assert loki.count() == 0


def test_push_with_corrupt_gzip_is_400(loki: LokiReceiver) -> None:
    reply = request(loki.url, data=b"\x1f\x8b not gzip", method="POST",
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status == 400
    assert reply.text.startswith("gzip:")


def test_push_without_content_type_is_400(loki: LokiReceiver) -> None:
    reply = push(loki.url, [(LABELS, [[str(now_ns()), "x"]])], content_type=None)
    assert reply.status == 400
    assert reply.text == "mime: no media type\n"
    assert loki.count() == 0


def test_push_json_with_charset_parameter_is_accepted(loki: LokiReceiver) -> None:
    reply = push(loki.url, [(LABELS, [[str(now_ns()), "x"]])], content_type="application/json; charset=utf-8")
    assert reply.status == 204


def test_push_non_json_content_type_is_400_like_a_corrupt_snappy_body(loki: LokiReceiver) -> None:
    # Real Loki reads any other type as snappy protobuf: "snappy: corrupt input" for this body.
    reply = push(loki.url, raw=b"\x00\x01", content_type="application/x-protobuf")
    assert reply.status == 400
    assert reply.text.startswith("snappy: corrupt input")


def test_push_body_over_100_mib_is_413(loki: LokiReceiver) -> None:
    # Declared length over the limit: answered before reading, connection closed.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", loki.port, timeout=10)
    conn.putrequest("POST", "/loki/api/v1/push")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str((100 << 20) + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()


def test_push_gzip_bomb_over_100_mib_decompressed_is_413(loki: LokiReceiver) -> None:
    # 101 gzip members of 1 MiB each: > 100 MiB once inflated, ~100 kB on the wire, cheap to build.
    bomb = gzip.compress(b" " * (1 << 20), compresslevel=9) * 101
    reply = request(loki.url, data=bomb, method="POST",
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status == 413
    assert "request body too large" in reply.text


def test_push_with_get_is_405(loki: LokiReceiver) -> None:
    assert request(loki.url).status == 405


# --- JSON shape ---------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"streams": [{"stream": {"a": "b"}, "values": [[1700000000000000000, "numeric ts"]]}]}',
        b'{"streams": [{"stream": {"a": "b"}, "values": [["17e17", "bad ts"]]}]}',
        b'{"streams": [{"stream": {"a": 1}, "values": [["1", "x"]]}]}',
        b'{"streams": [{"stream": {"a": "b"}, "values": [["1", 5]]}]}',
        b'{"streams": [{"stream": {"a": "b"}, "values": [["1", "x", {"k": 1}]]}]}',
        b'{"streams": [{"stream": {"a": "b"}, "values": [["1", "x", "meta"]]}]}',
    ],
    ids=["not-json", "array", "numeric-ts", "float-ts", "label-int", "line-int", "meta-int", "meta-str"],
)
def test_push_malformed_json_is_400_and_stores_nothing(loki: LokiReceiver, raw: bytes) -> None:
    reply = push(loki.url, raw=raw)
    assert reply.status == 400
    assert loki.count() == 0


def test_push_without_streams_is_422_on_3x_and_204_on_2x(loki: LokiReceiver) -> None:
    reply = push(loki.url, raw=b'{"streams": []}')
    assert (reply.status, reply.text) == (422, "error at least one valid stream is required for ingestion\n")
    assert push(loki.url, raw=b"{}").status == 422
    assert push(loki.url, [(LABELS, [])]).status == 204  # a stream, without entries
    assert loki.count() == 0
    with LokiReceiver(mode="2.9") as old:
        assert push(old.url, raw=b'{"streams": []}').status == 204


# --- labels -------------------------------------------------------------------


def test_push_invalid_label_name_rejects_the_whole_request(loki: LokiReceiver) -> None:
    ts = str(now_ns())
    reply = push(loki.url, [(LABELS, [[ts, "good"]]), ({"bad-name": "x"}, [[ts, "bad"]])])
    assert reply.status == 400
    assert reply.text.startswith("couldn't parse labels:")
    assert loki.count() == 0  # Loki's push parser fails before any stream is stored
    # Even on a stream that carries no entries.
    assert push(loki.url, [(LABELS, [[ts, "good"]]), ({"bad-name": "x"}, [])]).status == 400
    assert loki.count() == 0


def test_push_stream_without_labels_is_400_for_that_stream_only(loki: LokiReceiver) -> None:
    ts = str(now_ns())
    reply = push(loki.url, [({}, [[ts, "orphan"]]), (LABELS, [[ts, "kept"]])])
    assert reply.status == 400
    assert reply.text == "error at least one label pair is required per stream\n"
    assert loki.lines() == ["kept"]


def test_push_empty_label_values_are_dropped(loki: LokiReceiver) -> None:
    reply = push(loki.url, [({**LABELS, "empty": ""}, [[str(now_ns()), "x"]])])
    assert reply.status == 204
    assert dict(loki.entries()[0].labels) == LABELS


def test_push_more_than_15_label_names_is_400_for_that_stream(loki: LokiReceiver) -> None:
    ts = str(now_ns())
    many = {f"l{i:02d}": "v" for i in range(16)}
    exactly = {f"l{i:02d}": "v" for i in range(15)}
    reply = push(loki.url, [(many, [[ts, "too many"]]), (exactly, [[ts, "fifteen ok"]])])
    assert reply.status == 400
    assert "has 16 label names; limit 15" in reply.text
    assert loki.lines() == ["fifteen ok"]


def test_push_service_name_does_not_count_against_the_label_limit(loki: LokiReceiver) -> None:
    labels = {f"l{i:02d}": "v" for i in range(15)} | {"service_name": "svc"}
    assert push(loki.url, [(labels, [[str(now_ns()), "x"]])]).status == 204


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"n" * 1025: "v"}, "has label name too long"),
        ({"name": "v" * 2049}, "has label value too long"),
    ],
)
def test_push_label_name_or_value_too_long_is_400(
    loki: LokiReceiver, labels: dict[str, str], message: str
) -> None:
    ts = str(now_ns())
    reply = push(loki.url, [(labels, [[ts, "bad"]]), (LABELS, [[ts, "good"]])])
    assert reply.status == 400
    assert message in reply.text
    assert loki.lines() == ["good"]


def test_push_label_name_and_value_at_the_limit_are_accepted(loki: LokiReceiver) -> None:
    assert push(loki.url, [({"n" * 1024: "v" * 2048}, [[str(now_ns()), "x"]])]).status == 204


def test_push_double_underscore_labels_are_accepted_like_loki(loki: LokiReceiver) -> None:
    assert push(loki.url, [({"__hidden": "x", "a": "b"}, [[str(now_ns()), "x"]])]).status == 204


def test_push_discover_service_name_adds_the_label_like_loki3() -> None:
    with LokiReceiver(discover_service_name=True) as r:
        ts = str(now_ns())
        assert push(r.url, [({"app": "shop"}, [[ts, "a"]]), (LABELS, [[ts, "b"]])]).status == 204
        service = {e.line: e.labels["service_name"] for e in r.entries()}
        assert service == {"a": "shop", "b": "unknown_service"}


# --- entries ------------------------------------------------------------------


def test_push_line_over_max_line_size_is_rejected_others_stored(loki: LokiReceiver) -> None:
    ts = now_ns()
    limit = Limits().max_line_size
    assert limit == 262_144  # "256KB" is binary on 3.4.6
    values = [[str(ts), "a" * limit], [str(ts + 1), "b" * (limit + 1)], [str(ts + 2), "small"]]
    reply = push(loki.url, [(LABELS, values)], encoding="gzip")
    assert reply.status == 400
    assert reply.text == (
        "Max entry size '262144' bytes exceeded for stream '{function=\"f\", source=\"lambda\"}' "
        "while adding an entry with length '262145' bytes\n"
    )
    assert [len(line) for line in loki.lines()] == [limit, 5]
    rec = loki.requests[-1]
    assert (rec.status, rec.entries_received, rec.entries_accepted) == (400, 3, 2)


def test_push_line_size_counts_utf8_bytes() -> None:
    with LokiReceiver(max_line_size=10) as r:
        ts = now_ns()
        reply = push(r.url, [(LABELS, [[str(ts), "é" * 5], [str(ts + 1), "é" * 6]])])
        assert reply.status == 400
        assert "length '12' bytes" in reply.text
        assert r.lines() == ["é" * 5]


def test_push_too_old_and_too_new_entries_are_rejected(loki: LokiReceiver) -> None:
    now = now_ns()
    day = 86_400 * 10**9
    values = [
        [str(now - 8 * day), "eight days old"],
        [str(now - 6 * day), "six days old"],
        [str(now + 11 * 60 * 10**9), "eleven minutes ahead"],
        [str(now + 9 * 60 * 10**9), "nine minutes ahead"],
    ]
    reply = push(loki.url, [(LABELS, values)])
    assert reply.status == 400
    assert "2 errors like" not in reply.text
    stream = '{function="f", source="lambda"}'
    assert f"1 errors like: entry for stream '{stream}' has timestamp too old" in reply.text
    assert "has timestamp too new" in reply.text
    assert sorted(loki.lines()) == ["nine minutes ahead", "six days old"]


def test_push_repeated_errors_are_grouped_like_loki(loki: LokiReceiver) -> None:
    old = str(now_ns() - 30 * 86_400 * 10**9)
    reply = push(loki.url, [(LABELS, [[old, "a"], [old, "b"], [old, "c"]])])
    assert reply.status == 400
    assert reply.text.startswith("3 errors like: entry for stream")


def test_push_identical_timestamp_and_line_is_stored_once(loki: LokiReceiver) -> None:
    ts = str(now_ns())
    assert push(loki.url, [(LABELS, [[ts, "same"], [ts, "same"], [ts, "different"]])]).status == 204
    assert push(loki.url, [(LABELS, [[ts, "same"]])]).status == 204
    assert sorted(loki.lines()) == ["different", "same"]
    assert loki.duplicates == 2


def test_push_dedupe_can_be_switched_off() -> None:
    with LokiReceiver(limits=Limits(dedupe=False)) as r:
        ts = str(now_ns())
        assert push(r.url, [(LABELS, [[ts, "same"], [ts, "same"]])]).status == 204
        assert r.count() == 2


# --- structured metadata ------------------------------------------------------


def test_push_structured_metadata_is_stored_in_loki3_mode(loki: LokiReceiver) -> None:
    ts = str(now_ns())
    reply = push(loki.url, [(LABELS, [[ts, "with meta", {"request_id": "r-1", "level": "INFO"}]])])
    assert reply.status == 204
    assert dict(loki.entries()[0].metadata) == {"request_id": "r-1", "level": "INFO"}


def test_push_structured_metadata_limits(loki: LokiReceiver) -> None:
    ts = now_ns()
    too_many = {f"k{i}": "v" for i in range(129)}
    too_big = {"k": "v" * 65_536}
    values = [[str(ts), "many", too_many], [str(ts + 1), "big", too_big], [str(ts + 2), "fine", {"k": "v"}]]
    reply = push(loki.url, [(LABELS, values)])
    assert reply.status == 400
    assert "has too many structured metadata labels: '129', limit: '128'" in reply.text
    assert "has structured metadata too large: '65537' bytes, limit: '65536' bytes" in reply.text
    assert loki.lines() == ["fine"]


def test_loki2_mode_rejects_structured_metadata_and_keeps_plain_entries() -> None:
    with LokiReceiver(structured_metadata=False) as r:
        ts = now_ns()
        reply = push(r.url, [(LABELS, [[str(ts), "plain"], [str(ts + 1), "meta", {"request_id": "r"}]])])
        assert reply.status == 400
        assert "includes structured metadata, but this feature is disallowed" in reply.text
        assert r.lines() == ["plain"]
        # The same request without metadata goes through.
        assert push(r.url, [(LABELS, [[str(ts + 2), "meta moved into the line request_id=r"]])]).status == 204


# --- tenants and auth ---------------------------------------------------------


def test_tenant_header_is_recorded_per_entry_without_tenancy(loki: LokiReceiver) -> None:
    ts = now_ns()
    push(loki.url, [(LABELS, [[str(ts), "a"]])], headers={"X-Scope-OrgID": "team-a"})
    push(loki.url, [(LABELS, [[str(ts + 1), "b"]])])
    assert [(e.line, e.tenant) for e in loki.entries()] == [("a", "team-a"), ("b", None)]
    assert loki.count(tenant="team-a") == 1
    assert loki.requests[0].tenant == "team-a"


def test_require_tenant_answers_401_without_org_id() -> None:
    with LokiReceiver(require_tenant=True) as r:
        ts = str(now_ns())
        reply = push(r.url, [(LABELS, [[ts, "x"]])])
        assert reply.status == 401
        assert reply.text == "no org id\n"
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"X-Scope-OrgID": "t1"}).status == 204
        # Tenants are separate: the same entry in another tenant is not a duplicate.
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"X-Scope-OrgID": "t2"}).status == 204
        assert r.count() == 2
        assert r.count(tenant="t1") == 1


def test_basic_auth_required_and_recorded() -> None:
    with LokiReceiver(basic_auth=("123456", "glc_token")) as r:
        ts = str(now_ns())
        good = "Basic " + base64.b64encode(b"123456:glc_token").decode()
        bad = "Basic " + base64.b64encode(b"123456:wrong").decode()
        missing = push(r.url, [(LABELS, [[ts, "x"]])])
        assert missing.status == 401
        assert missing.headers["www-authenticate"] == 'Basic realm="loki"'
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"Authorization": bad}).status == 401
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"Authorization": "Basic %%%"}).status == 401
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"Authorization": good}).status == 204
        assert [rq.authorization for rq in r.requests] == [None, bad, "Basic %%%", good]
        assert r.count() == 1


def test_bearer_token_required() -> None:
    with LokiReceiver(bearer_token="s3cret") as r:
        ts = str(now_ns())
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"Authorization": "Bearer nope"}).status == 401
        assert push(r.url, [(LABELS, [[ts, "x"]])], headers={"Authorization": "Bearer s3cret"}).status == 204


# --- ingestion rate limit -----------------------------------------------------


def test_rate_limit_answers_429_and_stores_nothing_of_that_request() -> None:
    # 1 byte/s refill (negligible between two pushes, however slow the machine), 2 KiB burst.
    limits = Limits(ingestion_rate_mb=1 / 2**20, ingestion_burst_size_mb=2 / 1024)
    with LokiReceiver(rate_limit=True, limits=limits) as r:
        ts = now_ns()
        first = push(r.url, [(LABELS, [[str(ts), "a" * 1500]])])
        assert first.status == 204
        second = push(r.url, [(LABELS, [[str(ts + 1), "b" * 1500]])], headers={"X-Scope-OrgID": "t"})
        assert second.status == 429
        assert second.text.startswith("Ingestion rate limit exceeded for user fake (limit: 1 bytes/sec)")
        assert r.lines() == ["a" * 1500]
        # Bigger than the burst can never pass.
        assert push(r.url, [(LABELS, [[str(ts + 2), "c" * 3000]])]).status == 429


def test_rate_limit_is_per_tenant_with_tenancy() -> None:
    limits = Limits(ingestion_rate_mb=1 / 2**20, ingestion_burst_size_mb=2 / 1024)
    with LokiReceiver(rate_limit=True, require_tenant=True, limits=limits) as r:
        ts = now_ns()
        assert push(r.url, [(LABELS, [[str(ts), "a" * 1500]])], headers={"X-Scope-OrgID": "t1"}).status == 204
        assert push(r.url, [(LABELS, [[str(ts), "a" * 1500]])], headers={"X-Scope-OrgID": "t1"}).status == 429
        assert push(r.url, [(LABELS, [[str(ts), "a" * 1500]])], headers={"X-Scope-OrgID": "t2"}).status == 204


def test_rate_limit_off_by_default_accepts_8_mb_at_once(loki: LokiReceiver) -> None:
    # Two 4 MB requests back to back: over the 6 MB burst, refused only with rate_limit=True.
    ts = now_ns()
    for batch in range(2):
        values = [[str(ts + batch * 100 + i), "x" * 100_000] for i in range(40)]
        assert push(loki.url, [(LABELS, values)], encoding="gzip").status == 204
    assert loki.count() == 80


def test_push_over_the_ingesters_4_mib_message_limit_is_500_and_stores_nothing(loki: LokiReceiver) -> None:
    ts = now_ns()
    values = [[str(ts + i), "x" * 100_000] for i in range(43)]  # 4.3 MB: over 4,194,304
    reply = push(loki.url, [(LABELS, values)], encoding="gzip")
    assert reply.status == 500
    assert "grpc: received message larger than max" in reply.text
    assert loki.count() == 0


def test_encode_helper_roundtrip() -> None:
    # Guards the helpers the other tests rely on.
    import zlib

    assert gzip.decompress(encode(b"abc", "gzip")) == b"abc"
    assert zlib.decompress(encode(b"abc", "deflate"), -zlib.MAX_WBITS) == b"abc"


# --- ingester-side rules ------------------------------------------------------


def test_entry_too_far_behind_the_streams_newest_is_400_others_stored(loki: LokiReceiver) -> None:
    now = now_ns()
    hour = 3600 * 10**9
    assert push(loki.url, [(LABELS, [[str(now), "newest"]])]).status == 204
    behind, inside = str(now - hour - 10**9), str(now - hour + 10**9)
    reply = push(loki.url, [(LABELS, [[behind, "too far behind"], [inside, "ok"]])])
    assert reply.status == 400
    lines = reply.text.splitlines()
    assert lines[0].startswith("entry with timestamp ")
    assert "ignored, reason: 'entry too far behind, entry timestamp is: " in lines[0]
    stream = '{function="f", source="lambda"}'
    assert lines[1] == f"user 'fake', total ignored: 1 out of 2 for stream: {stream}"
    assert sorted(loki.lines()) == ["newest", "ok"]
    # Another stream has its own window.
    assert push(loki.url, [({"other": "s"}, [[str(now - 2 * hour), "old but first"]])]).status == 204


def test_unordered_window_can_be_switched_off() -> None:
    with LokiReceiver(limits=Limits(unordered_writes_window_s=0)) as r:
        now = now_ns()
        push(r.url, [(LABELS, [[str(now), "new"]])])
        assert push(r.url, [(LABELS, [[str(now - 5 * 3600 * 10**9), "old"]])]).status == 204


def test_per_stream_rate_limit_answers_429_and_keeps_what_fit() -> None:
    limits = Limits(per_stream_rate_limit=1, per_stream_rate_limit_burst=2500)
    with LokiReceiver(rate_limit=True, limits=limits) as r:
        ts = now_ns()
        values = [[str(ts + i), f"{i}" * 1000] for i in range(4)]
        reply = push(r.url, [(LABELS, values), ({"other": "stream"}, [[str(ts), "fits"]])])
        assert reply.status == 429
        assert "Per stream rate limit exceeded (limit: 1 B/sec) while attempting to ingest" in reply.text
        assert "total ignored: 2 out of 4 for stream" in reply.text
        assert sorted(r.lines()) == ["0" * 1000, "1" * 1000, "fits"]


# --- HTTP plumbing ------------------------------------------------------------


def test_keep_alive_connection_serves_many_pushes(loki: LokiReceiver) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", loki.port, timeout=10)
    ts = now_ns()
    for i in range(5):
        conn.request("POST", "/loki/api/v1/push", body=push_body([(LABELS, [[str(ts + i), f"k{i}"]])]),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (204, b"")
        assert resp.getheader("Connection") != "close"
    conn.close()
    assert loki.count() == 5
    # One TCP connection: every request came through the same client port.
    assert len({r.client_port for r in loki.requests}) == 1
    assert loki.requests[0].client_port != 0


def test_chunked_request_body_is_read(loki: LokiReceiver) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", loki.port, timeout=10)
    body = push_body([(LABELS, [[str(now_ns()), "chunked"]])])
    conn.request("POST", "/loki/api/v1/push", body=iter([body[:10], body[10:]]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    assert conn.getresponse().status == 204
    conn.close()
    assert loki.lines() == ["chunked"]


def test_expect_100_continue_is_honoured(loki: LokiReceiver) -> None:
    import socket

    body = push_body([(LABELS, [[str(now_ns()), "continued"]])])
    with socket.create_connection(("127.0.0.1", loki.port), timeout=10) as s:
        s.sendall(
            b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        assert s.recv(64).startswith(b"HTTP/1.1 100")
        s.sendall(body)
        rest = b""
        while chunk := s.recv(4096):
            rest += chunk
    assert b"HTTP/1.1 204" in rest
    assert loki.lines() == ["continued"]


# --- discard accounting -------------------------------------------------------


def test_discarded_counts_every_refused_entry_by_lokis_reason(loki: LokiReceiver) -> None:
    now = now_ns()
    day = 86_400 * 10**9
    values = [
        [str(now), "ok"],
        [str(now + 1), "x" * 262_145],
        [str(now - 8 * day), "old"],
        [str(now + day), "future"],
    ]
    push(loki.url, [(LABELS, values), ({}, [[str(now), "a"], [str(now), "b"]])])
    push(loki.url, [(LABELS, [[str(now - 2 * 3600 * 10**9), "behind"]])])
    push(loki.url, raw=b"not json")  # refused whole: not samples
    assert loki.discarded == {
        "line_too_long": 1,
        "greater_than_max_sample_age": 1,
        "too_far_in_future": 1,
        "missing_labels": 2,
        "too_far_behind": 1,
    }
    metrics = get(loki.base_url, "/metrics")
    assert metrics.status == 200
    series = metrics.text.splitlines()
    assert 'loki_discarded_samples_total{reason="missing_labels",tenant="fake"} 2' in series
    assert 'loki_distributor_lines_received_total{tenant="fake"} 7' in series


def test_discarded_counts_rate_limited_lines_per_tenant() -> None:
    limits = Limits(ingestion_rate_mb=1 / 1024, ingestion_burst_size_mb=1 / 1024)
    with LokiReceiver(rate_limit=True, require_tenant=True, limits=limits) as r:
        ts = now_ns()
        values = [[str(ts + i), "x" * 600] for i in range(2)]
        assert push(r.url, [(LABELS, values)], headers={"X-Scope-OrgID": "t1"}).status == 429
        assert r.discarded == {"rate_limited": 2}
        assert 'loki_discarded_samples_total{reason="rate_limited",tenant="t1"} 2' in r.metrics_text()


@pytest.mark.parametrize(
    ("n", "text"), [(1, "1 B"), (1000, "1.0 kB"), (3_000_000, "3.0 MB"), (15_000_000, "15 MB")]
)
def test_limits_print_like_go_humanize(n: int, text: str) -> None:
    # Loki prints per-stream limits with flagext.ByteSize -> humanize.Bytes (SI units).
    from harness.loki_receiver.store import _humanize_bytes

    assert _humanize_bytes(n) == text


# --- version modes (each rule measured on the real server; tests/differential compares) ---


def test_mode_27_fails_the_whole_push_on_metadata_objects_and_ignores_strings() -> None:
    ts = str(now_ns())
    with LokiReceiver(mode="2.7") as r:
        assert push(r.url, [(LABELS, [[ts, "ok"], [ts, "meta", {"a": "b"}]])]).status == 400
        assert r.count() == 0
        assert push(r.url, [(LABELS, [[ts, "kept", "ignored"]])]).status == 204
        assert [(e.line, dict(e.metadata)) for e in r.entries()] == [("kept", {})]


def test_mode_29_refuses_metadata_per_entry_with_29s_wording() -> None:
    ts = now_ns()
    with LokiReceiver(mode="2.9") as r:
        reply = push(r.url, [(LABELS, [[str(ts), "plain"], [str(ts + 1), "meta", {"a": "b"}]])])
        assert reply.status == 400
        assert "Please see `limits_config.structured_metadata`" in reply.text
        assert r.lines() == ["plain"]


def test_mode_29_keeps_label_values_as_written() -> None:
    raw = b'{"streams":[{"stream":{"v":"caf\\u00e9"},"values":[["%d","x"]]}]}' % now_ns()
    with LokiReceiver(mode="2.9") as r, LokiReceiver(mode="2.7") as r27:
        assert push(r.url, raw=raw).status == 204
        assert push(r27.url, raw=raw).status == 204
        assert r.entries()[0].labels == {"v": "caf\\u00e9"}
        assert r27.entries()[0].labels == {"v": "caf\u00e9"}


def test_mode_2x_has_no_line_limit_30_label_names_and_drops_empty_lines() -> None:
    ts = now_ns()
    labels = {f"l{i}": "v" for i in range(30)}
    with LokiReceiver(mode="2.9") as r:
        assert push(r.url, [(labels, [[str(ts), "x" * 300_000], [str(ts + 1), ""]])]).status == 204
        assert [len(line) for line in r.lines()] == [300_000]
        assert push(r.url, [({**labels, "l30": "v"}, [[str(ts), "y"]])]).status == 400


def test_mode_3_metadata_names_sanitised_and_values_kept_as_written() -> None:
    raw = (b'{"streams":[{"stream":{"job":"j"},"values":[["%d","x",'
           b'{"a-b":"1","9z":"2","job":"3","k":"caf\\u00e9"}]]}]}' % now_ns())
    with LokiReceiver() as r:
        assert push(r.url, raw=raw).status == 204
        assert r.entries()[0].metadata == {"a_b": "1", "key_9z": "2", "job_extracted": "3", "k": "caf\\u00e9"}


@pytest.mark.parametrize(("line", "level"), [
    ('{"level":"error","m":1}', "error"),
    ("ts=1 lvl=dbg msg=x", "debug"),
    ("[WARN] careful", "warn"),
    ("some info here", "info"),
    ("debug stuff", "unknown"),
    ("REPORT RequestId: 1", "unknown"),
])
def test_mode_3_detected_level_like_loki_34(line: str, level: str) -> None:
    with LokiReceiver(discover_log_levels=True) as r:
        assert push(r.url, [(LABELS, [[str(now_ns()), line]])]).status == 204
        assert r.entries()[0].metadata == {"detected_level": level}


def test_legacy_push_path_reads_its_own_json_format() -> None:
    body = (b'{"streams":[{"labels":"{job=\\"j\\", a=\\"b\\"}","entries":'
            b'[{"ts":"2030-01-02T03:04:05.123456Z","line":"legacy"}]}]}')
    with LokiReceiver(limits=Limits(creation_grace_period_s=10 * 365 * 86400.0)) as r:
        reply = request(
            r.base_url + "/api/prom/push", data=body, headers={"Content-Type": "application/json"})
        assert reply.status == 204
        [entry] = r.entries()
        assert (entry.labels, entry.line) == ({"a": "b", "job": "j"}, "legacy")
        assert entry.ts_ns == 1893553445123456000
