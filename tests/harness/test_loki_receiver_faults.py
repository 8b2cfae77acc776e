"""Loki receiver fault injection (outages, 429 storms, slow answers, dropped connections) and CLI."""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from loki_receiver_http import Reply, get, now_ns, push

from harness.loki_receiver import LokiReceiver

LABELS = {"source": "lambda", "function": "f"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def loki() -> Iterator[LokiReceiver]:
    with LokiReceiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _fresh(loki: LokiReceiver) -> None:
    loki.reset()


def one(loki: LokiReceiver, line: str = "x") -> Reply:
    return push(loki.url, [(LABELS, [[str(now_ns()), line]])])


def poll(fn: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Re-check fn until it holds or the deadline passes (polling with a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(interval)
    return fn()


def refused(loki: LokiReceiver) -> bool:
    try:
        one(loki)
    except ConnectionRefusedError:
        return True
    return False


# --- outages ------------------------------------------------------------------


def test_outage_5xx_until_cleared_stores_nothing(loki: LokiReceiver) -> None:
    loki.faults.outage(status=503)
    reply = one(loki, "lost")
    assert reply.status == 503
    assert get(loki.base_url, "/ready").status == 503  # everything is down, not just push
    loki.faults.clear()
    assert one(loki, "after").status == 204
    assert loki.lines() == ["after"]
    outage = [r for r in loki.requests if r.answered_by == "outage"]
    assert [r.status for r in outage] == [503, 503]


def test_outage_5xx_for_n_seconds_ends_by_itself(loki: LokiReceiver) -> None:
    # 1.5 s: long enough that the first request lands inside it even on a loaded machine.
    started = time.monotonic()
    loki.faults.outage(seconds=1.5, status=502)
    assert one(loki).status == 502
    assert poll(lambda: one(loki).status == 204)
    assert time.monotonic() - started >= 1.5


def test_outage_status_must_be_5xx(loki: LokiReceiver) -> None:
    with pytest.raises(ValueError, match="5xx"):
        loki.faults.outage(status=404)


def test_outage_refused_then_cleared_reuses_the_same_port(loki: LokiReceiver) -> None:
    url = loki.url
    loki.faults.outage(status=None)
    assert loki.faults.refusing
    assert refused(loki)
    loki.faults.clear()
    assert loki.url == url
    assert one(loki, "back").status == 204


def test_outage_refused_for_n_seconds_reopens_by_itself(loki: LokiReceiver) -> None:
    started = time.monotonic()
    loki.faults.outage(seconds=1.5, status=None)
    assert refused(loki)
    assert poll(lambda: not refused(loki))
    assert time.monotonic() - started >= 1.5
    assert not loki.faults.refusing


def test_outage_refused_cuts_open_keep_alive_connections(loki: LokiReceiver) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", loki.port, timeout=5)
    body = f'{{"streams":[{{"stream":{{"a":"b"}},"values":[["{now_ns()}","x"]]}}]}}'
    conn.request("POST", "/loki/api/v1/push", body=body, headers={"Content-Type": "application/json"})
    assert conn.getresponse().read() == b""
    loki.faults.outage(status=None)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("POST", "/loki/api/v1/push", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse()
    conn.close()
    loki.faults.clear()


# --- 429 storms, failures, disconnects ----------------------------------------


def test_rate_limit_times_with_retry_after(loki: LokiReceiver) -> None:
    loki.faults.rate_limit(times=2, retry_after=3)
    first, second, third = one(loki, "1"), one(loki, "2"), one(loki, "3")
    assert [first.status, second.status, third.status] == [429, 429, 204]
    assert first.headers["retry-after"] == "3"
    assert loki.lines() == ["3"]
    assert [r.answered_by for r in loki.push_requests()] == ["rate_limit", "rate_limit", "loki"]


def test_rate_limit_storm_until_cleared_without_retry_after(loki: LokiReceiver) -> None:
    loki.faults.rate_limit(times=None, retry_after=None)
    replies = [one(loki) for _ in range(5)]
    assert {r.status for r in replies} == {429}
    assert all("retry-after" not in r.headers for r in replies)
    loki.faults.clear()
    assert one(loki).status == 204


def test_rate_limit_fractional_and_http_date_retry_after(loki: LokiReceiver) -> None:
    loki.faults.rate_limit(times=1, retry_after=0.5)
    assert one(loki).headers["retry-after"] == "0.5"
    loki.faults.rate_limit(times=1, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert one(loki).headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_rate_limit_applies_to_pushes_only(loki: LokiReceiver) -> None:
    loki.faults.rate_limit(times=None)
    assert get(loki.base_url, "/ready").status == 200
    assert one(loki).status == 429


def test_fail_next_pushes_with_any_status(loki: LokiReceiver) -> None:
    loki.faults.fail(times=1, status=500)
    assert one(loki).status == 500
    assert one(loki).status == 204


def test_disconnect_closes_without_an_answer(loki: LokiReceiver) -> None:
    loki.faults.disconnect(times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        one(loki, "lost")
    assert one(loki, "kept").status == 204
    assert loki.lines() == ["kept"]
    assert loki.push_requests()[0].answered_by == "disconnect"


# --- slow answers -------------------------------------------------------------


def test_slow_delays_every_answer(loki: LokiReceiver) -> None:
    loki.faults.slow(0.25)
    started = time.monotonic()
    assert one(loki).status == 204
    assert time.monotonic() - started >= 0.25


def test_clear_releases_a_slow_answer_at_once(loki: LokiReceiver) -> None:
    loki.faults.slow(60)
    results: queue.Queue[tuple[int, float]] = queue.Queue()

    def client() -> None:
        t = time.monotonic()
        results.put((one(loki).status, time.monotonic() - t))

    th = threading.Thread(target=client)
    th.start()
    # Wait (with a deadline) until the request is being held, then clear.
    assert poll(lambda: loki.faults.held == 1)
    assert loki.count() == 0
    loki.faults.clear()
    status, took = results.get(timeout=10)
    th.join(10)
    assert status == 204
    assert took < 30


def test_slow_for_a_number_of_requests(loki: LokiReceiver) -> None:
    before = loki.faults.slowed
    loki.faults.slow(0.2, times=1)
    t = time.monotonic()
    one(loki)
    assert time.monotonic() - t >= 0.2
    one(loki)
    one(loki)
    assert loki.faults.slowed - before == 1


# --- receiver lifecycle and binding --------------------------------------------


def test_binds_loopback_only_on_an_ephemeral_port() -> None:
    with LokiReceiver() as a, LokiReceiver() as b:
        assert a.port != b.port
        assert a.base_url.startswith("http://127.0.0.1:")
    with pytest.raises(ValueError, match="loopback"):
        LokiReceiver(host="0.0.0.0")


def test_stop_closes_the_port() -> None:
    r = LokiReceiver().start()
    url = r.url
    assert push(url, [(LABELS, [[str(now_ns()), "x"]])]).status == 204
    r.stop()
    with pytest.raises(ConnectionRefusedError):
        push(url, [(LABELS, [[str(now_ns()), "x"]])])


def test_concurrent_pushes_are_all_stored() -> None:
    with LokiReceiver() as r:
        base = now_ns()

        def worker(k: int) -> None:
            for i in range(20):
                push(r.url, [({"w": str(k)}, [[str(base + i), f"{k}-{i}"]])])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert r.wait_for_count(160, timeout=10)
        assert r.count() == 160


# --- CLI ----------------------------------------------------------------------


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str, str, queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.loki_receiver", "--port", "0", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    first = lines.get(timeout=30)
    m = re.search(r"push (http://127\.0\.0\.1:\d+/loki/api/v1/push)", first)
    assert m, first
    return proc, first, m.group(1), lines


def _wait_line(lines: queue.Queue[str], pattern: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if re.search(pattern, line):
            return line


def test_cli_serves_pushes_and_reports_on_sigterm() -> None:
    proc, banner, url, lines = _start_cli()
    try:
        assert "Loki 3.x mode" in banner
        assert push(url, [(LABELS, [[str(now_ns()), "hello", {"k": "v"}]])]).status == 204
        assert _wait_line(lines, r"^push ") == "push 204 entries 1/1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert _wait_line(lines, r"^stored ") == "stored 1 entries"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("args", [("--loki2",), ("--mode", "2.9")])
def test_cli_without_structured_metadata_rejects_it(args: tuple[str, ...]) -> None:
    proc, banner, url, lines = _start_cli(*args)
    try:
        assert "no structured metadata" in banner if args == ("--loki2",) else "Loki 2.9 mode" in banner
        assert push(url, [(LABELS, [[str(now_ns()), "hello", {"k": "v"}]])]).status == 400
        assert _wait_line(lines, r"^push ").startswith("push 400 entries 0/1 stream")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_a_receiver_bug_is_answered_500_not_a_dropped_connection(
    loki: LokiReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(loki._api, "push", broken)
    reply = one(loki)
    assert reply.status == 500
    assert "RuntimeError('boom')" in reply.text
    assert loki.requests[-1].status == 500
