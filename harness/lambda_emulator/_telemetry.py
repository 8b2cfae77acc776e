"""Telemetry API delivery: per-subscriber buffering, HTTP POSTs with retries, freezing.

One condition variable guards the hub and all its subscribers: there are only a few
subscribers, and a single lock keeps "frozen" and every buffer consistent.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import _records
from ._subscription import Subscription

#: Retry schedule when a POST fails: 50 ms, 100, 200, 400, 800, then 1 s each time.
BACKOFF_INITIAL_S = 0.05
BACKOFF_MAX_S = 1.0


@dataclass
class Delivery:
    """One successful POST, for tests and bench."""

    subscriber: str
    monotonic_s: float
    records: int
    bytes: int


@dataclass
class TelemetryStats:
    """Counters that survive environment resets (one per emulator)."""

    function_records: int = 0
    extension_records: int = 0
    platform_records: int = 0
    #: Records the emulator dropped because a subscriber's buffer was full.
    dropped_records: int = 0
    dropped_bytes: int = 0
    #: Every platform.logsDropped record actually delivered.
    logs_dropped_sent: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    failed_posts: int = 0
    #: Records still buffered when an environment shut down (never delivered).
    undelivered_records: int = 0


class _Subscriber:
    def __init__(self, hub: TelemetryHub, name: str, sub: Subscription) -> None:
        self.hub = hub
        self.name = name
        self.sub = sub
        self.buffer: deque[tuple[dict[str, Any], int, float]] = deque()
        self.buffered_bytes = 0
        self.pending_dropped_records = 0
        self.pending_dropped_bytes = 0
        self.inflight = False
        self.closed = False
        self.retry_at = 0.0
        self.backoff = 0.0
        self.conn: http.client.HTTPConnection | None = None
        self.thread = threading.Thread(target=self._run, name=f"telemetry-{name}", daemon=True)

    # --- called with hub.cond held -------------------------------------------------
    def offer(self, evt: dict[str, Any], size: int, now: float) -> bool:
        """Buffer (or drop) one event; True when the delivery thread should wake up."""
        if evt["type"].split(".")[0] not in self.sub.types:
            return False
        is_log = evt["type"] in ("function", "extension")
        if is_log and self.sub.schema_version == "2022-07-01" and isinstance(evt["record"], dict):
            # Before 2022-12-13 a JSON-format log record is always rendered as a string.
            evt = {**evt, "record": _records.encode(evt["record"])}
            size = _records.event_size(evt)
        if self.buffered_bytes + size > self.hub.buffer_limit_bytes:
            # The consumer is not keeping up: drop the newest and report it later.
            self.pending_dropped_records += 1
            self.pending_dropped_bytes += size
            self.hub.stats.dropped_records += 1
            self.hub.stats.dropped_bytes += size
            return self.pending_dropped_records == 1
        self.buffer.append((evt, size, now))
        self.buffered_bytes += size
        # Waking the thread for every record costs a context switch each: only when the
        # buffer starts (to arm the timeoutMs wait) or a size limit is reached.
        return (
            len(self.buffer) == 1
            or len(self.buffer) == self.sub.max_items
            or self.buffered_bytes - size < self.sub.max_bytes <= self.buffered_bytes
        )

    def _due(self, now: float) -> bool:
        if self.retry_at > now:
            return False
        if self.pending_dropped_records and "platform" in self.sub.types:
            return True
        if not self.buffer:
            return False
        return (
            len(self.buffer) >= self.sub.max_items
            or self.buffered_bytes >= self.sub.max_bytes
            or now - self.buffer[0][2] >= self.sub.timeout_ms / 1000
        )

    def _wait_s(self, now: float) -> float | None:
        waits = []
        if self.retry_at > now:
            waits.append(self.retry_at - now)
        elif self.buffer:
            waits.append(self.buffer[0][2] + self.sub.timeout_ms / 1000 - now)
        return max(0.001, min(waits)) if waits else None

    def _take(self) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], int, float]], tuple[int, int]]:
        taken: list[tuple[dict[str, Any], int, float]] = []
        size = 0
        while self.buffer and len(taken) < self.sub.max_items:
            item = self.buffer[0]
            if taken and size + item[1] > self.sub.max_bytes:
                break
            taken.append(self.buffer.popleft())
            size += item[1]
            self.buffered_bytes -= item[1]
        drops = (0, 0)
        events = [t[0] for t in taken]
        if self.pending_dropped_records and "platform" in self.sub.types:
            drops = (self.pending_dropped_records, self.pending_dropped_bytes)
            events.insert(0, _records.event("platform.logsDropped", _records.logs_dropped(*drops)))
            self.pending_dropped_records = self.pending_dropped_bytes = 0
        elif "platform" not in self.sub.types:
            # Lambda documents logsDropped as a platform event: without a platform
            # subscription only the emulator's counters show the loss.
            self.pending_dropped_records = self.pending_dropped_bytes = 0
        return events, taken, drops

    # --- delivery thread ------------------------------------------------------------
    def _run(self) -> None:
        cond = self.hub.cond
        while True:
            with cond:
                while True:
                    if self.closed:
                        return
                    now = time.monotonic()
                    if not self.hub.frozen and self._due(now):
                        break
                    cond.wait(self._wait_s(now))
                events, taken, drops = self._take()
                self.inflight = True
            body = _records.encode(events).encode()
            ok = self._post(body)
            with cond:
                self.inflight = False
                if ok:
                    self.backoff = 0.0
                    self.retry_at = 0.0
                    self.hub.stats.deliveries.append(
                        Delivery(self.name, time.monotonic(), len(events), len(body))
                    )
                    if drops != (0, 0):
                        self.hub.stats.logs_dropped_sent.append(events[0]["record"])
                else:
                    self.hub.stats.failed_posts += 1
                    for item in reversed(taken):
                        self.buffer.appendleft(item)
                        self.buffered_bytes += item[1]
                    self.pending_dropped_records += drops[0]
                    self.pending_dropped_bytes += drops[1]
                    self.backoff = min(BACKOFF_MAX_S, self.backoff * 2 or BACKOFF_INITIAL_S)
                    self.retry_at = time.monotonic() + self.backoff
                cond.notify_all()

    def _post(self, body: bytes) -> bool:
        reused = self.conn is not None
        try:
            return self._post_once(body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._drop_connection()
            if not reused:
                return False
            # The listener closed an idle keep-alive connection: one fresh attempt at
            # once, not a backoff, since nothing reached it.
        except (OSError, http.client.HTTPException):
            self._drop_connection()
            return False
        try:
            return self._post_once(body)
        except (OSError, http.client.HTTPException):
            self._drop_connection()
            return False

    def _post_once(self, body: bytes) -> bool:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(
                "127.0.0.1", self.sub.port, timeout=self.hub.delivery_timeout_s
            )
        self.conn.request("POST", self.sub.path, body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        resp.read()
        if resp.will_close:
            self._drop_connection()
        return 200 <= resp.status < 300

    def _drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class TelemetryHub:
    """Fans records out to subscribers; holds init-time records until they subscribe."""

    def __init__(self, stats: TelemetryStats, buffer_limit_bytes: int, delivery_timeout_s: float) -> None:
        self.stats = stats
        self.buffer_limit_bytes = buffer_limit_bytes
        self.delivery_timeout_s = delivery_timeout_s
        self.cond = threading.Condition()
        self.frozen = False
        # Lambda buffers from init start so a subscriber sees the whole init phase.
        self._backlog: list[tuple[dict[str, Any], int]] | None = []
        self._backlog_bytes = 0
        self._subscribers: dict[str, _Subscriber] = {}

    def emit(self, type_: str, record: Any, epoch_s: float | None = None) -> None:
        evt = _records.event(type_, record, epoch_s)
        size = _records.event_size(evt)
        now = time.monotonic()
        with self.cond:
            if type_ == "function":
                self.stats.function_records += 1
            elif type_ == "extension":
                self.stats.extension_records += 1
            else:
                self.stats.platform_records += 1
            if self._backlog is not None and self._backlog_bytes + size <= self.buffer_limit_bytes:
                self._backlog.append((evt, size))
                self._backlog_bytes += size
            wake = False
            for sub in self._subscribers.values():
                wake = sub.offer(evt, size, now) or wake
            if wake:
                self.cond.notify_all()

    def subscribe(self, name: str, sub: Subscription) -> None:
        """Add or replace (subscriptions are idempotent per extension) a subscriber."""
        with self.cond:
            old = self._subscribers.pop(name, None)
            if old is not None:
                old.closed = True
            s = _Subscriber(self, name, sub)
            now = time.monotonic()
            for evt, size in self._backlog or ():
                s.offer(evt, size, now)
            self._subscribers[name] = s
            self.cond.notify_all()
        s.thread.start()

    def end_init(self) -> None:
        with self.cond:
            self._backlog = None
            self._backlog_bytes = 0

    def subscribers(self) -> dict[str, Subscription]:
        with self.cond:
            return {n: s.sub for n, s in self._subscribers.items()}

    def freeze(self, wait_s: float) -> None:
        """Stop delivering; give an in-flight POST up to wait_s to finish first."""
        deadline = time.monotonic() + wait_s
        with self.cond:
            self.frozen = True
            while any(s.inflight for s in self._subscribers.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)

    def thaw(self) -> None:
        with self.cond:
            self.frozen = False
            self.cond.notify_all()

    def pending(self) -> int:
        with self.cond:
            return sum(len(s.buffer) for s in self._subscribers.values())

    def close(self) -> None:
        with self.cond:
            subs = list(self._subscribers.values())
            for s in subs:
                s.closed = True
                self.stats.undelivered_records += len(s.buffer)
            self.cond.notify_all()
        for s in subs:
            if s.thread.is_alive() and s.thread is not threading.current_thread():
                s.thread.join(self.delivery_timeout_s + 1)
            if s.conn is not None:
                s.conn.close()
