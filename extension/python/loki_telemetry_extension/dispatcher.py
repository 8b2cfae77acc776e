"""Buffering, flush triggers and drop accounting between the listener and Loki.

Threads: the listener's connection thread calls :meth:`Dispatcher.accept` (after it
has answered 200); one background sender pushes when a batch is due (size, age, or
woken by :meth:`wake_sender`); the lifecycle's main thread calls :meth:`flush` (before
an invoke's freeze) and drains at SHUTDOWN. Every push holds ``_push_lock``: one
connection, one request at a time.
"""

from __future__ import annotations

import threading
import time

from . import drop_report, retry
from .batch import MAX_REQUEST_BYTES, Buffer, encode_requests, pack
from .diag import MARKER, warn, warn_once
from .entries import STREAM_EXTENSION, STREAM_TYPES
from .invoke_volume import InvokeVolumes, high_water_mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .entries import Packed
    from .http11 import Response
    from .records import RecordConverter

    Sender = Callable[[bytes, float], Response]

#: A 400 whose body says this: a Loki that knows structured metadata but refuses it (2.9:
#: "… includes structured metadata, but this feature is disallowed …"). Entries of the same
#: request without metadata WERE stored (checked on Loki 2.9.17): re-send only the others.
_SM_REFUSED_HINTS = ("structured metadata",)
#: A 400 whose body says this: a Loki that predates structured metadata and fails to decode
#: the third element of a value (2.7: "loghttp.PushRequest.Streams: []*loghttp.Stream:
#: unmarshalerDecoder: Value is string, but can't find closing '"' symbol …"). Nothing of the
#: request was stored: re-send all of it.
_DECODE_ERROR_HINTS = ("unmarshalerdecoder", "loghttp.pushrequest", "cannot unmarshal")
RESEND_ALL = "all"
RESEND_WITH_METADATA = "with_metadata"

#: How many recent runtimeDone request ids are remembered (the SHUTDOWN drain asks for the last).
RUNTIME_DONE_MEMORY = 256


def metadata_rejection(resp: Response) -> str | None:
    """For a 400 to a push that carried metadata: which entries to re-send without it (None: a
    400 for another reason, final)."""
    if resp.status != 400:
        return None
    text = resp.body[:4096].decode("utf-8", "replace").lower()
    if any(h in text for h in _DECODE_ERROR_HINTS):
        return RESEND_ALL
    if any(h in text for h in _SM_REFUSED_HINTS):
        return RESEND_WITH_METADATA
    return None


def metadata_rejected(resp: Response) -> bool:
    return metadata_rejection(resp) is not None


class Stats:
    """Loss counters (the drop report) and what was delivered."""

    def __init__(self) -> None:
        self.entries_sent = 0
        self.dropped_buffer_full = 0
        self.dropped_rejected = 0
        self.dropped_shutdown = 0
        self.lambda_dropped_records = 0

    def drops(self) -> dict[str, int]:
        return {
            "buffer_full": self.dropped_buffer_full,
            "rejected_by_loki": self.dropped_rejected,
            "shutdown_deadline": self.dropped_shutdown,
            "lambda_logs_dropped": self.lambda_dropped_records,
        }


class Dispatcher:
    def __init__(
        self,
        *,
        converter: RecordConverter,
        send: Sender,
        stream_labels: Sequence[dict[str, str]],
        batch_size: int,
        flush_interval_s: float,
        max_buffer_bytes: int,
        url_for_messages: str,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        rolling_deadline_s: float | None = None,
    ) -> None:
        self._converter = converter
        self._send = send
        self._labels = list(stream_labels)
        self._batch_size = batch_size
        self._interval = flush_interval_s
        # One request in flight holds at most a quarter of the buffer, so that while it is
        # stuck in retries (Loki down) new lines still fit and "drop the oldest" evicts queued
        # lines older than them rather than the newest ones.
        self._max_request_bytes = max(1, min(max_request_bytes, max_buffer_bytes // 4))
        self._url = url_for_messages
        self._buffer = Buffer(max_buffer_bytes)
        self._cond = threading.Condition()
        self._push_lock = threading.Lock()
        self._convert_lock = threading.Lock()
        self._sender_parked = False
        self._urgent = False
        self._stop = threading.Event()
        self._deadline = time.monotonic() + 3600.0  # replaced by the first event's deadline
        #: platform.runtimeDone per request id (its event time, ns), oldest first.
        self._done: dict[str, int] = {}
        self._volumes = InvokeVolumes()
        self.metadata_allowed = True
        #: The last push attempt failed (connection error, 429, 5xx): Loki is down or
        #: overloaded. Cleared by the next attempt Loki answers otherwise.
        self.loki_failing = False
        self.stats = Stats()
        self._reported_drops = self.stats.drops()
        self._last_error: str | None = None
        #: Monotonic time before which Loki asked (Retry-After) not to be pushed to again.
        self._not_before = 0.0
        self._thread: threading.Thread | None = None
        #: When set (Managed Instances), the sender's pushes end this long after they start,
        #: not at the current event's deadline.
        self._rolling = rolling_deadline_s

    # --- input (listener thread) -------------------------------------------------
    def accept(self, body: bytes) -> None:
        try:
            # Lambda delivers one batch at a time, but nothing forbids two connections: the
            # converter's state (request id, repeat detection) must see deliveries in turn.
            with self._convert_lock:
                conv = self._converter.convert(body)
        except Exception as e:  # converter never raises; belt and braces for the listener
            warn_once("convert", f"could not read a telemetry delivery ({type(e).__name__}); skipped")
            return
        with self._cond:
            if conv.entries:
                before = self._buffer.accepted_bytes
                self.stats.dropped_buffer_full += self._buffer.add(conv.entries, time.monotonic())
                self._volumes.add(self._buffer.accepted_bytes - before)
            self.stats.lambda_dropped_records += conv.lambda_dropped_records
            if conv.runtime_done:
                for rid, ts in zip(conv.runtime_done, conv.runtime_done_ns, strict=True):
                    self._done[rid] = ts
                    self._volumes.invoke_done()
                while len(self._done) > RUNTIME_DONE_MEMORY:
                    del self._done[next(iter(self._done))]
            self._cond.notify_all()

    # --- control (main thread) ---------------------------------------------------
    def set_deadline(self, monotonic_deadline: float) -> None:
        """Pushes from now on must end by this monotonic time (the current event's deadline).

        Wakes the sender only if it is parked waiting for a new deadline: at every INVOKE
        the main thread is on its way to ``next``, and a woken sender would compete with it
        for the GIL. A sender waiting for the age trigger wakes by itself after a thaw.
        """
        with self._cond:
            self._deadline = monotonic_deadline
            if self._sender_parked:
                self._cond.notify_all()

    def wake_sender(self) -> None:
        """Have the background sender push whatever is queued now, whatever its size and age."""
        with self._cond:
            if len(self._buffer):
                self._urgent = True
                self._cond.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sender_loop, name="loki-sender", daemon=True)
        self._thread.start()

    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

    def held_bytes(self) -> int:
        """What the queued and in-flight entries cost in memory (what LOKI_MAX_BUFFER_BYTES bounds)."""
        with self._cond:
            return self._buffer.held_bytes

    def high_water_mark(self, percent: int, previous_done: bool) -> int:
        """Held bytes from which a push before ``next`` is due (see invoke_volume)."""
        with self._cond:
            return high_water_mark(self._buffer.max_bytes, percent, self._volumes.largest(), previous_done)

    def runtime_done_ns(self, request_id: str) -> int | None:
        """The event time of the request's platform.runtimeDone, if it was delivered."""
        with self._cond:
            return self._done.get(request_id)

    def wait_runtime_done(self, request_id: str, deadline: float) -> bool:
        """Block until ``platform.runtimeDone`` for the request was delivered (or deadline)."""
        with self._cond:
            while request_id not in self._done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_for_data(self, timeout: float) -> bool:
        """Wait until something is queued (True) or ``timeout`` passes with nothing (False)."""
        end = time.monotonic() + timeout
        with self._cond:
            while not len(self._buffer):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def flush(self, deadline: float, *, below_bytes: int = 0, stop_on_failure: bool = False) -> bool:
        """Push from the main thread until the queued entries cost less than ``below_bytes``
        (0: until nothing is queued or in flight); True when that was reached in time.

        A push the background sender has in flight is waited for (``_push_lock``): its
        entries are not queued any more, but they are not in Loki yet either. With
        ``stop_on_failure`` it gives up as soon as Loki fails an attempt (no retries).
        """
        def until() -> float:
            return 0.0 if stop_on_failure and self.loki_failing else deadline

        while True:
            # Bounded: the sender may be retrying a push against a Loki that hangs.
            while not self._push_lock.acquire(timeout=min(0.05, max(0.0, until() - time.monotonic()))):
                if time.monotonic() >= until():
                    return False
            try:
                with self._cond:
                    if below_bytes:
                        if self._buffer.queued_bytes < below_bytes:
                            return True
                    elif not len(self._buffer) and not self._report_due():
                        return True
                if time.monotonic() >= until():
                    return False
                if not self._push_locked(until, time.sleep):
                    return False
            finally:
                self._push_lock.release()

    def stop_sender(self) -> None:
        """Stop the background sender (at SHUTDOWN, before the final drain)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        t = self._thread
        if t is not None and t.ident is not None:
            t.join(timeout=0.5)

    def give_up_remaining(self) -> int:
        """At the very end: count what could not be shipped before the shutdown deadline."""
        with self._cond:
            n = len(self._buffer)
            self._buffer.finish(self._buffer.take(1 << 62))
            self.stats.dropped_shutdown += n
            return n

    # --- pushing ------------------------------------------------------------------
    def _due(self, now: float) -> float | None:
        """0 if a push is due now, else seconds until the age trigger (None: nothing queued)."""
        n = len(self._buffer)
        if not n:
            self._urgent = False
            return 0.0 if self._report_due() else None
        if n >= self._batch_size or self._urgent:
            return 0.0
        oldest = self._buffer.oldest_arrival()
        assert oldest is not None
        return max(0.0, oldest + self._interval - now)

    def _sender_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._cond:
                    while not self._stop.is_set():
                        due = self._due(time.monotonic())
                        if due == 0.0:
                            break
                        self._cond.wait(due)  # None: until accept() notifies
                if self._stop.is_set():
                    return
                if not self._push_once(self._sender_deadline, self._stop.wait):
                    # Out of time for this invoke: wait for the next thaw/event to move the deadline.
                    with self._cond:
                        d = self._deadline
                        self._sender_parked = True
                        try:
                            while not self._stop.is_set() and self._deadline == d:
                                self._cond.wait()
                        finally:
                            self._sender_parked = False
            except Exception as e:  # never let the sender die silently
                warn_once("sender", f"sender error {type(e).__name__}: {e}; continuing")
                self._stop.wait(0.1)

    def _sender_deadline(self) -> float:
        if self._stop.is_set():
            return 0.0
        if self._rolling is not None:
            return time.monotonic() + self._rolling
        return self._deadline

    def _push_once(self, deadline: Callable[[], float], wait: Callable[[float], object]) -> bool:
        with self._push_lock:
            return self._push_locked(deadline, wait)

    def _push_locked(self, deadline: Callable[[], float], wait: Callable[[float], object]) -> bool:
        """Take one request's worth of entries and push it; False if time ran out (what was not
        delivered goes back to the front of the buffer). Caller holds ``_push_lock``."""
        report = self._drop_report_item()
        with self._cond:
            taken = self._buffer.take(self._max_request_bytes)
        if not taken and report is None:
            return True
        items = [*taken, report] if report is not None else taken
        leftover: list[Packed] = items
        try:
            leftover = self._push_items(items, deadline, wait)
        finally:
            with self._cond:
                self._buffer.finish(taken, [it for it in leftover if it is not report])
                if report is not None and any(it is report for it in leftover):
                    self._reported_drops = {}  # report again next time
        return not leftover

    def _push_items(self, items: Sequence[Packed], deadline: Callable[[], float],
                    wait: Callable[[float], object], *, without_metadata: bool = False) -> list[Packed]:
        """Push ``items`` in requests of at most ``_max_request_bytes``; returns the ones that
        were neither delivered nor given up on (time ran out), in order."""
        metadata = self.metadata_allowed and not without_metadata
        chunks = encode_requests(items, self._labels, metadata=metadata, max_bytes=self._max_request_bytes)
        for i, (chunk, body) in enumerate(chunks):
            outcome = retry.push_with_retry(self._sender_for(body), deadline, wait=wait,
                                            not_before=self._not_before)
            self._not_before = outcome.retry_at or 0.0
            if outcome.result == retry.OK:
                self.stats.entries_sent += len(chunk)
                self._last_error = None
                self.loki_failing = False
                if without_metadata and self.metadata_allowed:
                    self.metadata_allowed = False
                    warn("Loki does not accept structured metadata; request_id, level and tenant_id "
                         "now go into the line instead")
                continue
            if outcome.result == retry.REJECTED and outcome.response is not None:
                resp = outcome.response
                scope = metadata_rejection(resp) if metadata and any(it[2] for it in chunk) else None
                if scope is not None:
                    # Loki could not take the metadata: re-send, without it, what it did not store.
                    resend = list(chunk) if scope == RESEND_ALL else [it for it in chunk if it[2]]
                    left = self._push_items(resend, deadline, wait, without_metadata=True)
                    if left:
                        return left + [it for c, _ in chunks[i + 1:] for it in c]
                    continue
                # Our own drop-report line is not a user entry: counting it would make a new
                # report due, which Loki rejects again, and so on (a push loop).
                lost = sum(1 for it in chunk if not _is_report(it))
                self.stats.dropped_rejected += lost
                warn(f"Loki at {self._url} rejected a push of {lost} entries with HTTP {resp.status}: "
                     f"{resp.body[:300].decode('utf-8', 'replace').strip()} (not retried; Loki keeps the "
                     "valid entries of a 400, so up to that many may be missing)")
                continue
            if outcome.last_error and outcome.last_error != self._last_error:
                self._last_error = outcome.last_error
                warn(f"cannot push to Loki at {self._url}: {outcome.last_error}; "
                     "will retry while time is left")
            return [it for c, _ in chunks[i:] for it in c]
        return []

    def _sender_for(self, body: bytes) -> Callable[[float], Response]:
        def send(timeout: float) -> Response:
            try:
                resp = self._send(body, timeout)
            except OSError:
                self.loki_failing = True
                raise
            self.loki_failing = retry.is_retryable(resp.status)
            return resp

        return send

    def _report_due(self) -> bool:
        drops = self.stats.drops()
        return drops != self._reported_drops and any(drops.values())

    def _drop_report_item(self) -> Packed | None:
        """A Loki line (type="extension") when drop counters moved since the last report."""
        drops = self.stats.drops()
        if drops == self._reported_drops or not any(drops.values()):
            return None
        self._reported_drops = drops
        text = drop_report.so_far(drops)
        warn(text)
        return pack([(STREAM_EXTENSION, time.time_ns(), f"{MARKER} {text}", None)], time.monotonic())[0]


_MARKER_BYTES = MARKER.encode()


def _is_report(item: Packed) -> bool:
    return item[1] == STREAM_EXTENSION and item[2] is None and _MARKER_BYTES in item[0]


def stream_labels(function_name: str, static: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Label set per stream index (see entries.STREAM_TYPES)."""
    from .envvars import SOURCE_LABEL_VALUE

    out = []
    for t in STREAM_TYPES:
        labels = dict(static)
        labels["source"] = SOURCE_LABEL_VALUE
        labels["function"] = function_name
        if t is not None:
            labels["type"] = t
        out.append(labels)
    return out
