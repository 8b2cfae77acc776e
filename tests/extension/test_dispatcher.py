"""dispatcher: flush triggers, drops and their reports, Loki 2.x fallback, deadlines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ext_fakes import FakeLoki, Recorded, fn, platform
from loki_telemetry_extension.dispatcher import (
    RESEND_ALL,
    RESEND_WITH_METADATA,
    Dispatcher,
    metadata_rejected,
    metadata_rejection,
    stream_labels,
)
from loki_telemetry_extension.http11 import Response
from loki_telemetry_extension.loki_client import LokiClient
from loki_telemetry_extension.records import RecordConverter

LOKI2_BODY = (
    b'stream \'{function="f", source="lambda"}\' includes structured metadata, but this feature is '
    b"disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki "
    b"administrator to enable it."
)

#: Loki 2.7.7's answer to a push carrying structured metadata (captured from the real binary).
LOKI27_BODY = (
    b"loghttp.PushRequest.Streams: []*loghttp.Stream: unmarshalerDecoder: Value is string, but can't find "
    b"closing '\"' symbol, error found in #10 byte of ...|: \"r1\"}]]}]}|..., bigger context ...|"
)


def make(loki: FakeLoki, **kw: Any) -> Dispatcher:
    client = LokiClient(loki.url)
    args: dict[str, Any] = {
        "converter": RecordConverter(ship_platform=False, ship_extension=False, max_line_bytes=256_000),
        "send": lambda body, timeout: client.send(body, timeout=timeout),
        "stream_labels": stream_labels("f", (("env", "test"),)),
        "batch_size": 1000,
        "flush_interval_s": 60.0,
        "max_buffer_bytes": 1 << 20,
        "url_for_messages": loki.url,
    }
    args.update(kw)
    d = Dispatcher(**args)
    d.set_deadline(time.monotonic() + 10)
    return d


def deliver(d: Dispatcher, *items: dict[str, Any]) -> None:
    d.accept(json.dumps(list(items)).encode())


@pytest.fixture
def started() -> Iterator[list[Dispatcher]]:
    made: list[Dispatcher] = []
    yield made
    for d in made:
        d.stop_sender()


def test_stream_labels() -> None:
    assert stream_labels("fn", (("env", "prod"),)) == [
        {"env": "prod", "source": "lambda", "function": "fn"},
        {"env": "prod", "source": "lambda", "function": "fn", "type": "platform"},
        {"env": "prod", "source": "lambda", "function": "fn", "type": "extension"},
    ]


def test_batch_size_triggers_a_background_push(loki: FakeLoki, started: list[Dispatcher]) -> None:
    d = make(loki, batch_size=5)
    started.append(d)
    d.start()
    deliver(d, *[fn(f"l{i}") for i in range(4)])
    assert not loki.wait_for(lambda lk: len(lk.requests) > 0, timeout=0.3)  # below batch size, young
    deliver(d, fn("l4"))
    assert loki.wait_for(lambda lk: len(lk.stored()) == 5)


def test_age_triggers_a_push_below_batch_size(loki: FakeLoki, started: list[Dispatcher]) -> None:
    d = make(loki, batch_size=1000, flush_interval_s=0.05)
    started.append(d)
    d.start()
    deliver(d, fn("lonely"))
    assert loki.wait_for(lambda lk: [e[2] for e in lk.stored()] == ["lonely"])


def test_flush_pushes_everything_with_labels_and_metadata(loki: FakeLoki) -> None:
    d = make(loki)
    deliver(d, platform("start", {"requestId": "r1"}), fn("a\n"), fn("b\n"))
    assert d.flush(time.monotonic() + 5)
    rec = loki.requests[0]
    assert rec.headers["content-encoding"] == "gzip" and rec.headers["content-type"] == "application/json"
    assert rec.entries() == [
        (
            {"env": "test", "source": "lambda", "function": "f"},
            rec.entries()[0][1],
            "a",
            {"request_id": "r1"},
        ),
        (
            {"env": "test", "source": "lambda", "function": "f"},
            rec.entries()[1][1],
            "b",
            {"request_id": "r1"},
        ),
    ]
    assert d.stats.entries_sent == 2 and d.pending() == 0


def test_loki2_rejection_switches_to_lines_and_resends_without_loss(loki: FakeLoki) -> None:
    loki.script = [(400, {}, LOKI2_BODY)]
    d = make(loki)
    deliver(d, platform("start", {"requestId": "r1"}), fn("a"), fn("[INFO]\tt\tr1\tb"))
    assert d.flush(time.monotonic() + 5)
    assert len(loki.requests) == 2
    assert d.metadata_allowed is False
    assert [e[2:] for e in loki.requests[1].entries()] == [
        ("a request_id=r1", None),
        ("[INFO]\tt\tr1\tb", None),
    ]
    assert d.stats.drops() == {
        "buffer_full": 0,
        "rejected_by_loki": 0,
        "shutdown_deadline": 0,
        "lambda_logs_dropped": 0,
    }
    # and it stays switched: the next push has no metadata from the start
    deliver(d, fn("c"))
    assert d.flush(time.monotonic() + 5)
    assert len(loki.requests) == 3 and loki.requests[2].entries()[0][2:] == ("c request_id=r1", None)


def test_metadata_rejected_detection() -> None:
    assert metadata_rejection(Response(400, {}, LOKI2_BODY)) == RESEND_WITH_METADATA
    assert metadata_rejection(Response(400, {}, b"structured metadata is not allowed for tenant")) == (
        RESEND_WITH_METADATA)
    assert metadata_rejection(Response(400, {}, LOKI27_BODY)) == RESEND_ALL
    assert not metadata_rejected(Response(400, {}, b"entry too far behind"))
    assert not metadata_rejected(Response(500, {}, LOKI2_BODY))


def _loki_like(version: str, stored: list[str]) -> Any:
    """A script answer behaving like real Loki ``version`` (measured on 2.7.7 and 2.9.17):
    2.7 stores nothing of a request with metadata (JSON decoding error), 2.9 stores the
    entries without metadata and refuses the rest, a request without metadata is stored."""

    def answer(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        entries = rec.entries()
        with_meta = [e for e in entries if e[3]]
        rec.ok = not with_meta  # type: ignore[attr-defined]
        if not with_meta:
            stored.extend(e[2] for e in entries)
            return 204, {}, b""
        if version == "2.7":
            return 400, {}, LOKI27_BODY
        stored.extend(e[2] for e in entries if not e[3])
        return 400, {}, LOKI2_BODY

    return answer


@pytest.mark.parametrize("version", ["2.7", "2.9"])
def test_loki_without_metadata_stores_every_line_exactly_once(
    loki: FakeLoki, version: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Loki that cannot take structured metadata, and entries with and without it
    stored: list[str] = []
    loki.script = [_loki_like(version, stored)] * 4
    d = make(loki)
    deliver(d, fn("plain-1"), platform("start", {"requestId": "r1"}), fn("tagged"),
            fn("[INFO]\tt\tr1\tlogged"))
    d._converter.current_request_id = None  # a line without any metadata after them
    deliver(d, fn("plain-2"))
    # WHEN pushed
    assert d.flush(time.monotonic() + 5)
    # THEN every line is in Loki once, the metadata folded into the lines that carried it
    assert sorted(stored) == sorted(["plain-1", "tagged request_id=r1", "[INFO]\tt\tr1\tlogged", "plain-2"])
    assert len(loki.requests) == 2 and d.metadata_allowed is False
    assert not any(d.stats.drops().values())
    # AND it is remembered, with one diagnostic
    deliver(d, platform("start", {"requestId": "r2"}), fn("next"))
    assert d.flush(time.monotonic() + 5)
    assert len(loki.requests) == 3 and stored[-1] == "next request_id=r2"
    assert capfd.readouterr().err.count("Loki does not accept structured metadata") == 1


def test_a_metadata_400_whose_retry_fails_is_not_remembered(loki: FakeLoki) -> None:
    # GIVEN a 2.9-like refusal, then a 400 for another reason to the retry without metadata
    loki.script = [(400, {}, LOKI2_BODY), (400, {}, b"entry for stream has timestamp too old")]
    d = make(loki)
    deliver(d, platform("start", {"requestId": "r1"}), fn("a"), fn("b"))
    assert d.flush(time.monotonic() + 5)
    # THEN the entries count as rejected, and metadata is still tried next time
    assert d.stats.dropped_rejected == 2 and d.metadata_allowed is True


def test_fallback_out_of_time_keeps_only_what_loki_did_not_store(loki: FakeLoki) -> None:
    # GIVEN a 2.9-like refusal (it stored the entry without metadata), then Loki unreachable
    loki.script = [(400, {}, LOKI2_BODY)] + [(503, {}, b"")] * 50
    d = make(loki)
    deliver(d, fn("plain"), platform("start", {"requestId": "r1"}), fn("tagged"))
    # WHEN time runs out during the retry without metadata
    assert not d.flush(time.monotonic() + 0.5)
    # THEN only the refused entry is still queued (the stored one is never sent again)
    assert d.pending() == 1 and d.metadata_allowed is True


def test_400_is_not_retried_counted_and_reported_in_loki(
    loki: FakeLoki, capfd: pytest.CaptureFixture[str]
) -> None:
    loki.script = [(400, {}, b"entry for stream has timestamp too old")]
    d = make(loki)
    deliver(d, fn("a"), fn("b"))
    assert d.flush(time.monotonic() + 5)
    assert d.stats.dropped_rejected == 2
    err = capfd.readouterr().err
    assert "[loki-telemetry-extension] Loki at" in err and "HTTP 400" in err and "timestamp too old" in err
    # a report line (type="extension") saying what was lost is pushed too
    lines = [(e[0].get("type"), e[2]) for r in loki.requests[1:] for e in r.entries()]
    assert (
        "extension",
        "[loki-telemetry-extension] log entries lost so far: buffer_full=0, "
        "rejected_by_loki=2, shutdown_deadline=0, lambda_logs_dropped=0",
    ) in lines


def test_buffer_full_drops_oldest_and_reports(loki: FakeLoki) -> None:
    d = make(loki, max_buffer_bytes=64 * 1024)
    deliver(d, *[fn(f"{i:05d}" + "x" * 1000) for i in range(100)])
    assert d.stats.dropped_buffer_full > 0
    kept = 100 - d.stats.dropped_buffer_full
    assert d.flush(time.monotonic() + 5)
    stored = [e for r in loki.requests for e in r.entries()]
    fn_lines = [e[2] for e in stored if "type" not in e[0]]
    assert [int(x[:5]) for x in fn_lines] == list(range(100 - kept, 100))  # the newest survive
    assert any(f"buffer_full={d.stats.dropped_buffer_full}" in e[2] for e in stored if e[0].get("type"))


def test_lambda_logs_dropped_is_counted(loki: FakeLoki) -> None:
    d = make(loki)
    deliver(
        d, platform("logsDropped", {"droppedRecords": 12, "droppedBytes": 3000, "reason": "slow consumer"})
    )
    assert d.stats.lambda_dropped_records == 12
    assert d.flush(time.monotonic() + 5)
    assert any("lambda_logs_dropped=12" in e[2] for r in loki.requests for e in r.entries())


def test_out_of_time_keeps_entries_for_later_and_honours_retry_after(loki: FakeLoki) -> None:
    loki.script = [(503, {"Retry-After": "1"}, b"")]
    d = make(loki)
    deliver(d, fn("a"), fn("b"))
    t0 = time.monotonic()
    assert not d.flush(t0 + 0.5)  # Retry-After 1 s does not fit: give up at once, keep the entries
    assert time.monotonic() - t0 < 0.5
    assert d.pending() == 2 and d.stats.entries_sent == 0
    assert len(loki.requests) == 1
    assert d.flush(time.monotonic() + 5)  # a later invoke: delivered, nothing lost...
    assert [e[2] for e in loki.requests[-1].entries()] == ["a", "b"]
    assert time.monotonic() - t0 >= 1.0  # ...but not before Loki's Retry-After ran out


def test_give_up_remaining_counts_shutdown_drops(loki: FakeLoki) -> None:
    d = make(loki)
    deliver(d, fn("a"), fn("b"), fn("c"))
    assert d.give_up_remaining() == 3
    assert d.stats.dropped_shutdown == 3 and d.pending() == 0


def test_wait_runtime_done(loki: FakeLoki) -> None:
    d = make(loki)
    assert not d.wait_runtime_done("r1", time.monotonic() + 0.05)
    deliver(d, platform("runtimeDone", {"requestId": "r1", "status": "success"}))
    assert d.wait_runtime_done("r1", time.monotonic() + 0.05)


def test_large_backlog_is_split_into_requests_under_1mib(loki: FakeLoki) -> None:
    d = make(loki, max_buffer_bytes=8 << 20)
    deliver(d, *[fn("y" * 10_000) for _ in range(300)])  # ~3 MB
    assert d.flush(time.monotonic() + 10)
    assert len(loki.requests) >= 3
    import gzip

    assert all(len(gzip.decompress(r.raw)) <= 1024 * 1024 for r in loki.requests)
    assert sum(len(r.entries()) for r in loki.requests) == 300


def test_recorded_helper_handles_plain_json() -> None:
    r = Recorded("/", {}, b'{"streams": []}')
    assert r.entries() == []


def test_a_loki_that_rejects_everything_gets_no_push_storm(loki: FakeLoki) -> None:
    # GIVEN a Loki answering 401 to everything (e.g. tenant missing)
    loki.script = [(401, {}, b"no org id")] * 50
    d = make(loki)
    deliver(d, fn("a"), fn("b"))
    # WHEN flushing
    assert d.flush(time.monotonic() + 5)
    # THEN one push for the entries and one for the report of their loss, no more
    assert len(loki.requests) == 2
    assert d.stats.dropped_rejected == 2
    assert d.flush(time.monotonic() + 5) and len(loki.requests) == 2


def test_one_request_holds_at_most_a_quarter_of_the_buffer(loki: FakeLoki) -> None:
    assert make(loki, max_buffer_bytes=64 * 1024)._max_request_bytes == 16 * 1024
    assert make(loki, max_buffer_bytes=64 << 20)._max_request_bytes == 1024 * 1024


def test_buffer_full_during_a_stuck_push_keeps_the_newest_lines(
    loki: FakeLoki, started: list[Dispatcher]
) -> None:
    # GIVEN a 64 KiB bound and a Loki failing the first pushes (the sender's batch stays in flight)
    loki.script = [(503, {}, b"")] * 4
    d = make(loki, max_buffer_bytes=64 * 1024, batch_size=50)
    started.append(d)
    d.start()
    deliver(d, *[fn(f"old{i:03d}" + "x" * 40) for i in range(200)])
    assert loki.wait_for(lambda lk: len(lk.requests) >= 1)
    # WHEN far more arrives while that push is retried
    for b in range(5):
        deliver(d, *[fn(f"new{b}{i:03d}" + "x" * 40) for i in range(200)])
    assert loki.wait_for(lambda lk: len(lk.requests) >= 5)
    d.stop_sender()
    assert d.flush(time.monotonic() + 10)
    # THEN the newest invoke's lines all survive and the loss is counted exactly
    stored = {e[2][:7] for r in loki.requests[4:] for e in r.entries() if "type" not in e[0]}
    assert {f"new4{i:03d}" for i in range(200)} <= stored
    total_stored = len([e for r in loki.requests[4:] for e in r.entries() if "type" not in e[0]])
    assert d.stats.dropped_buffer_full == 1200 - total_stored


def test_flush_waits_for_a_push_the_sender_has_in_flight(loki: FakeLoki, started: list[Dispatcher]) -> None:
    import threading

    # GIVEN the background sender in the middle of a push (Loki answers only when released)
    in_flight, release = threading.Event(), threading.Event()

    def slow(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        in_flight.set()
        release.wait(10)
        return 204, {}, b""

    loki.script = [slow]
    d = make(loki, batch_size=1)
    started.append(d)
    d.start()
    deliver(d, fn("on its way"))
    assert in_flight.wait(5)
    # WHEN the main thread flushes before the freeze
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(d.flush(time.monotonic() + 5)))
    t.start()
    # THEN it does not return while that push is still open (its line is not queued, not in Loki)
    t.join(0.3)
    assert t.is_alive() and not result
    release.set()
    t.join(5)
    assert result == [True] and [e[2] for e in loki.stored()] == ["on its way"]


def test_wake_sender_pushes_below_size_and_age(loki: FakeLoki, started: list[Dispatcher]) -> None:
    d = make(loki, batch_size=1000, flush_interval_s=60.0)
    started.append(d)
    d.start()
    deliver(d, fn("young and few"))
    d.wake_sender()
    assert loki.wait_for(lambda lk: [e[2] for e in lk.stored()] == ["young and few"])
