"""Loki's per-tenant ingestion rate limit: a token bucket (Go's ``rate.Limiter``) per tenant."""

from __future__ import annotations

import threading
import time

#: Loki converts ``ingestion_rate_mb`` with 1 MB = 1,048,576 bytes.
BYTES_IN_MB = 1 << 20


class TokenBucket:
    """Go's ``rate.Limiter.AllowN``: refill at `rate` bytes/s up to `burst`; n > burst never passes.

    Not locked: callers hold their own lock (the store's).
    """

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()

    def allow(self, n: int, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (t - self._last) * self.rate)
        self._last = t
        if n > self._tokens:
            return False
        self._tokens -= n
        return True


class TenantRateLimiter:
    """``AllowN(now, tenant, n)``: all-or-nothing, like Loki's distributor (a refused push stores nothing)."""

    def __init__(self, rate_mb: float, burst_mb: float) -> None:
        self.rate = rate_mb * BYTES_IN_MB
        self.burst = burst_mb * BYTES_IN_MB
        self._lock = threading.Lock()
        #: tenant -> (tokens, last refill monotonic time)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, tenant: str, n: int, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(tenant, (self.burst, t))
            tokens = min(self.burst, tokens + (t - last) * self.rate)
            if n > tokens:
                self._buckets[tenant] = (tokens, t)
                return False
            self._buckets[tenant] = (tokens - n, t)
            return True

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
