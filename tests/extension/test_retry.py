"""retry: which answers are retried, backoff, Retry-After and the deadline (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import gzip
import socket
import time

import pytest
from ext_fakes import FakeLoki
from loki_telemetry_extension import retry
from loki_telemetry_extension.http11 import Response
from loki_telemetry_extension.loki_client import LokiClient


class Clock:
    """Virtual time: waits advance it instead of sleeping."""

    def __init__(self) -> None:
        self.t = 0.0
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    def wait(self, s: float) -> None:
        self.waits.append(s)
        self.t += s


def _push(loki: FakeLoki, clock: Clock, deadline: float = 60.0) -> retry.Outcome:
    client = LokiClient(loki.url)
    try:
        return retry.push_with_retry(
            lambda t: client.send(gzip.compress(b'{"streams": []}'), timeout=t),
            lambda: deadline,
            wait=clock.wait,
            now=clock.now,
            jitter=lambda: 1.0,
        )
    finally:
        client.close()


def test_success_first_time(loki: FakeLoki) -> None:
    clock = Clock()
    out = _push(loki, clock)
    assert (out.result, out.attempts, clock.waits) == (retry.OK, 1, [])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_other_4xx_is_never_retried(loki: FakeLoki, status: int) -> None:
    loki.script = [(status, {}, b"bad")] * 3
    clock = Clock()
    out = _push(loki, clock)
    assert out.result == retry.REJECTED and out.attempts == 1 and len(loki.requests) == 1
    assert out.response is not None and out.response.body == b"bad"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_are_retried_with_exponential_backoff(loki: FakeLoki, status: int) -> None:
    loki.script = [(status, {}, b"")] * 4
    clock = Clock()
    out = _push(loki, clock)
    assert out.result == retry.OK and out.attempts == 5
    assert clock.waits == [0.1, 0.2, 0.4, 0.8]


def test_backoff_is_capped() -> None:
    clock = Clock()
    calls = 0

    def send(t: float) -> Response:
        nonlocal calls
        calls += 1
        return Response(503 if calls < 10 else 204, {}, b"")

    retry.push_with_retry(send, lambda: 1000.0, wait=clock.wait, now=clock.now, jitter=lambda: 1.0)
    assert clock.waits == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_retry_after_is_honoured(loki: FakeLoki) -> None:
    loki.script = [(429, {"Retry-After": "2"}, b"slow down")]
    clock = Clock()
    out = _push(loki, clock)
    assert out.result == retry.OK and clock.waits == [2.0]


def test_retry_after_beyond_deadline_gives_up_without_waiting(loki: FakeLoki) -> None:
    loki.script = [(429, {"Retry-After": "30"}, b"")]
    clock = Clock()
    out = _push(loki, clock, deadline=5.0)
    assert out.result == retry.OUT_OF_TIME and clock.waits == [] and out.attempts == 1


def test_deadline_bounds_the_whole_push() -> None:
    clock = Clock()

    def send(t: float) -> Response:
        assert t <= 3.0 - clock.t + 1e-9  # every request timeout is cut to the time left
        return Response(503, {}, b"")

    out = retry.push_with_retry(send, lambda: 3.0, wait=clock.wait, now=clock.now, jitter=lambda: 1.0)
    assert out.result == retry.OUT_OF_TIME
    assert clock.t <= 3.0 and sum(clock.waits) <= 3.0
    assert out.last_error == "HTTP 503"


def test_jitter_scales_the_wait() -> None:
    clock = Clock()
    answers = iter([Response(500, {}, b""), Response(204, {}, b"")])
    retry.push_with_retry(
        lambda t: next(answers), lambda: 10.0, wait=clock.wait, now=clock.now, jitter=lambda: 0.5
    )
    assert clock.waits == [0.05]


def test_default_jitter_range() -> None:
    vals = [retry._jitter() for _ in range(500)]
    assert min(vals) >= 0.5 and max(vals) < 1.0 and len(set(vals)) > 10


def test_connection_refused_is_retried_until_deadline() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    client = LokiClient(f"http://127.0.0.1:{port}/loki/api/v1/push")
    clock = Clock()
    out = retry.push_with_retry(
        lambda t: client.send(b"x", timeout=t),
        lambda: 1.0,
        wait=clock.wait,
        now=clock.now,
        jitter=lambda: 1.0,
    )
    assert out.result == retry.OUT_OF_TIME and out.attempts >= 3
    assert out.last_error is not None and "ConnectionRefused" in out.last_error


def test_real_time_deadline_is_respected_with_a_slow_server() -> None:
    # A server that accepts and never answers: the request timeout is cut to the deadline.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        client = LokiClient(f"http://127.0.0.1:{srv.getsockname()[1]}/push")
        start = time.monotonic()
        out = retry.push_with_retry(lambda t: client.send(b"x", timeout=t), lambda: start + 0.5)
        elapsed = time.monotonic() - start
        assert out.result == retry.OUT_OF_TIME
        assert elapsed < 0.5 + 0.3  # generous safety bound
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("raw", "value"), [("3", 3.0), ("0.5", 0.5), ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("-1", None)]
)
def test_retry_after_parsing(raw: str, value: float | None) -> None:
    assert retry.retry_after_s(Response(429, {"retry-after": raw}, b"")) == value


def test_not_before_carries_a_retry_after_over() -> None:
    clock = Clock()
    out = retry.push_with_retry(
        lambda t: Response(204, {}, b""), lambda: 10.0, wait=clock.wait, now=clock.now, not_before=2.5
    )
    assert out.result == retry.OK and clock.waits == [2.5]


def test_pending_retry_after_past_deadline_is_returned_for_the_next_push() -> None:
    clock = Clock()
    out = retry.push_with_retry(
        lambda t: Response(429, {"retry-after": "4"}, b""), lambda: 3.0, wait=clock.wait, now=clock.now
    )
    assert out.result == retry.OUT_OF_TIME and out.retry_at == 4.0 and clock.waits == []
    out2 = retry.push_with_retry(
        lambda t: Response(204, {}, b""), lambda: 3.0, wait=clock.wait, now=clock.now, not_before=out.retry_at
    )
    assert out2.result == retry.OUT_OF_TIME and out2.attempts == 0  # still not allowed before 4.0
