"""Fault injection: outages (refused connections or 5xx), 429 storms, slow answers, dropped connections.

All state sits behind one lock; the HTTP handler asks :meth:`Faults.decide` once
per request. Time-bounded faults compare against ``time.monotonic()`` at request
time, so no timer thread is needed except to re-open a refused listener.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """What the handler must do instead of (or before) the normal answer."""

    #: "status": answer `status` (+ headers), "disconnect": close without answering, "" : normal.
    action: str = ""
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    #: Seconds to hold the answer back (slow fault); applies to the normal answer too.
    delay_s: float = 0.0
    #: Name recorded in RequestRecord.answered_by.
    fault: str = ""


@dataclass
class _Counted:
    remaining: int | None  # None = until cleared / until deadline
    deadline: float | None  # monotonic; None = no time bound

    def active(self, now: float) -> bool:
        if self.deadline is not None and now >= self.deadline:
            return False
        return self.remaining is None or self.remaining > 0

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


def _deadline(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


class Faults:
    """The receiver's fault switchboard (``receiver.faults``)."""

    def __init__(self, stop_listening: Callable[[], None], start_listening: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._stop_listening = stop_listening
        self._start_listening = start_listening
        self._outage: tuple[_Counted, int] | None = None
        self._refusing = False
        self._reopen_timer: threading.Timer | None = None
        self._rate_limit: tuple[_Counted, str | None] | None = None
        self._fail: tuple[_Counted, int] | None = None
        self._disconnect: _Counted | None = None
        self._slow: tuple[_Counted, float] | None = None
        # Set by clear() so a slow answer in progress is released at once.
        self._wake = threading.Event()
        self._held = 0
        self._slowed = 0

    # --- switches ------------------------------------------------------------

    def outage(self, seconds: float | None = None, status: int | None = 503) -> None:
        """Be down for `seconds` (None: until :meth:`clear`).

        status=5xx: every request is answered with it. status=None: the listener is
        closed (connection refused) and open keep-alive connections are cut.
        """
        if status is None:
            with self._lock:
                self._cancel_timer_locked()
                self._refusing = True
                self._outage = None
                if seconds is not None:
                    self._reopen_timer = threading.Timer(seconds, self._reopen)
                    self._reopen_timer.daemon = True
            self._stop_listening()
            with self._lock:
                if self._reopen_timer is not None:
                    self._reopen_timer.start()
            return
        if not 500 <= status <= 599:
            raise ValueError(f"outage status must be 5xx or None (connection refused), got {status}")
        with self._lock:
            self._outage = (_Counted(None, _deadline(seconds)), status)

    def rate_limit(
        self, times: int | None = 1, retry_after: float | str | None = 1, seconds: float | None = None
    ) -> None:
        """Answer the next `times` pushes (None: all, until cleared or `seconds` pass) with 429.

        `retry_after` becomes the Retry-After header (None: no header).
        """
        ra = None if retry_after is None else _retry_after_value(retry_after)
        with self._lock:
            self._rate_limit = (_Counted(times, _deadline(seconds)), ra)

    def fail(self, times: int | None = 1, status: int = 500, seconds: float | None = None) -> None:
        """Answer the next `times` pushes with `status` (any code, e.g. 500, 502, 400)."""
        with self._lock:
            self._fail = (_Counted(times, _deadline(seconds)), status)

    def disconnect(self, times: int | None = 1, seconds: float | None = None) -> None:
        """Read the next `times` pushes, then close the connection without answering."""
        with self._lock:
            self._disconnect = _Counted(times, _deadline(seconds))

    def slow(self, delay_s: float, times: int | None = None, seconds: float | None = None) -> None:
        """Hold every answer (push, query...) back by `delay_s` (released early by :meth:`clear`)."""
        with self._lock:
            self._slow = (_Counted(times, _deadline(seconds)), delay_s)

    def clear(self) -> None:
        """End every fault now (re-opens a refused listener, releases slow answers)."""
        with self._lock:
            self._outage = self._rate_limit = self._fail = self._slow = None
            self._disconnect = None
            self._cancel_timer_locked()
            refusing, self._refusing = self._refusing, False
            wake, self._wake = self._wake, threading.Event()
        wake.set()
        if refusing:
            self._start_listening()

    def close(self) -> None:
        """Receiver stopping: cancel a pending re-open without starting anything."""
        with self._lock:
            self._cancel_timer_locked()
            self._refusing = False
            wake, self._wake = self._wake, threading.Event()
        wake.set()

    @property
    def held(self) -> int:
        """Requests being held back by the slow fault right now (lets tests synchronise on it)."""
        with self._lock:
            return self._held

    @property
    def slowed(self) -> int:
        """Requests the slow fault has held back so far."""
        with self._lock:
            return self._slowed

    def hold(self, delay_s: float, wake: threading.Event) -> None:
        """Wait out a slow answer; returns early when the fault is cleared."""
        with self._lock:
            self._held += 1
            self._slowed += 1
        try:
            wake.wait(delay_s)
        finally:
            with self._lock:
                self._held -= 1

    @property
    def refusing(self) -> bool:
        with self._lock:
            return self._refusing

    # --- used by the handler -------------------------------------------------

    def decide(self, is_push: bool) -> tuple[Decision, threading.Event]:
        """One decision per request; consumes counted faults. Returns the event that ends a slow wait."""
        now = time.monotonic()
        with self._lock:
            wake = self._wake
            delay = 0.0
            if self._slow is not None and self._slow[0].active(now):
                self._slow[0].consume()
                delay = self._slow[1]
            if self._outage is not None:
                counted, status = self._outage
                if counted.active(now):
                    return Decision("status", status, (), "service unavailable (injected outage)\n", delay,
                                    "outage"), wake
                self._outage = None
            if not is_push:
                return Decision(delay_s=delay, fault="slow" if delay else ""), wake
            if self._disconnect is not None and self._disconnect.active(now):
                self._disconnect.consume()
                return Decision("disconnect", delay_s=delay, fault="disconnect"), wake
            if self._rate_limit is not None:
                counted, ra = self._rate_limit
                if counted.active(now):
                    counted.consume()
                    headers = (("Retry-After", ra),) if ra is not None else ()
                    return Decision("status", 429, headers, "Too Many Requests (injected)\n", delay,
                                    "rate_limit"), wake
            if self._fail is not None:
                counted, status = self._fail
                if counted.active(now):
                    counted.consume()
                    return Decision("status", status, (), f"injected failure {status}\n", delay, "fail"), wake
            return Decision(delay_s=delay, fault="slow" if delay else ""), wake

    # --- internals -----------------------------------------------------------

    def _reopen(self) -> None:
        with self._lock:
            if not self._refusing:
                return
            self._refusing = False
            self._reopen_timer = None
        self._start_listening()

    def _cancel_timer_locked(self) -> None:
        if self._reopen_timer is not None:
            self._reopen_timer.cancel()
            self._reopen_timer = None


def _retry_after_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
