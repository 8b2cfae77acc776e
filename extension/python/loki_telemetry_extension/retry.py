"""The retry rule for Loki pushes, in one place.

Retry ONLY 429, 5xx and connection errors (incl. TLS errors and timeouts). Any other
4xx is final: Loki has already stored the valid entries of a 400 request, so a retry
could only duplicate them or fail again.

Backoff schedule (before jitter): 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, 5 … s, each wait
scaled by a random factor in [0.5, 1.0) ("equal jitter") so many environments hitting
one Loki do not retry in lock-step. A ``Retry-After`` of N seconds replaces the
computed wait. Retries go on while time is left: every wait and every request
timeout is cut to the deadline, and a wait that would end past it is not started.
"""

from __future__ import annotations

import os
import time

from .http11 import Response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

BACKOFF_INITIAL_S = 0.1
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_S = 5.0
#: Longest a single request may take, whatever time is left.
REQUEST_TIMEOUT_S = 10.0
#: No point starting a request with less time than this left.
MIN_REQUEST_TIME_S = 0.01

OK = "ok"
REJECTED = "rejected"
OUT_OF_TIME = "out_of_time"


class Outcome:
    __slots__ = ("attempts", "last_error", "response", "result", "retry_at")

    def __init__(self, result: str, response: Response | None, attempts: int, last_error: str | None,
                 retry_at: float | None = None) -> None:
        self.result = result  # OK | REJECTED | OUT_OF_TIME
        self.response = response
        self.attempts = attempts
        self.last_error = last_error
        #: OUT_OF_TIME while a Retry-After was pending: no push before this (monotonic) time.
        self.retry_at = retry_at


def is_retryable(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _jitter() -> float:
    return 0.5 + int.from_bytes(os.urandom(2), "big") / 131072  # [0.5, 1.0)


def retry_after_s(resp: Response) -> float | None:
    """Seconds from a ``Retry-After: <seconds>`` header (HTTP dates are ignored: backoff then)."""
    raw = resp.headers.get("retry-after")
    if raw is None:
        return None
    try:
        v = float(raw.strip())
    except ValueError:
        return None
    return v if 0 <= v < 86400 else None


def push_with_retry(
    send: Callable[[float], Response],
    deadline: Callable[[], float],
    *,
    wait: Callable[[float], object] = time.sleep,
    now: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = _jitter,
    not_before: float = 0.0,
) -> Outcome:
    """Call ``send(timeout)`` until success, a final answer, or the deadline.

    ``deadline`` is re-read before every attempt: after a freeze the dispatcher moves
    it to the new invoke's deadline, so an interrupted push carries on under it.
    ``not_before`` carries a Retry-After over from an earlier push that ran out of time
    (e.g. the background sender's, when the SHUTDOWN drain takes over).
    """
    delay = BACKOFF_INITIAL_S
    attempts = 0
    last_error: str | None = None
    last_resp: Response | None = None
    honour_until = not_before  # a server-requested pause still running
    while True:
        t = now()
        if honour_until > t:
            if honour_until >= deadline() - MIN_REQUEST_TIME_S:
                return Outcome(OUT_OF_TIME, last_resp, attempts, last_error, honour_until)
            wait(honour_until - t)
            t = now()
            if honour_until > t:  # woken early (stop requested)
                return Outcome(OUT_OF_TIME, last_resp, attempts, last_error, honour_until)
        left = deadline() - t
        if left < MIN_REQUEST_TIME_S:
            return Outcome(OUT_OF_TIME, last_resp, attempts, last_error)
        attempts += 1
        try:
            resp = send(min(left, REQUEST_TIMEOUT_S))
        except OSError as e:  # connection refused/reset, DNS, TLS, timeout
            last_error = f"{type(e).__name__}: {e}"
            pause = delay * jitter()
        else:
            last_resp = resp
            if 200 <= resp.status < 300:
                return Outcome(OK, resp, attempts, None)
            if not is_retryable(resp.status):
                return Outcome(REJECTED, resp, attempts, None)
            last_error = f"HTTP {resp.status}"
            ra = retry_after_s(resp)
            if ra is not None:
                honour_until = now() + ra
                continue  # the wait (or giving up) happens at the top of the loop
            pause = delay * jitter()
        delay = min(delay * BACKOFF_FACTOR, BACKOFF_MAX_S)
        left = deadline() - now()
        if pause >= left:
            return Outcome(OUT_OF_TIME, last_resp, attempts, last_error)
        wait(pause)
