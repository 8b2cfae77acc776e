"""Buffering, flush triggers and drop accounting between the listener and Loki.

Threads: the listener's connection thread calls :meth:`Dispatcher.accept` (after it
has answered 200); one background sender pushes when a batch is due; the lifecycle's
main thread calls :meth:`flush` (ship-before-freeze) and :meth:`drain` (SHUTDOWN).
Every push holds ``_push_lock``: one connection, one request at a time.
"""

from __future__ import annotations

import threading
import time

from . import retry
from .batch import MAX_REQUEST_BYTES, Buffer, encode_requests
from .diag import MARKER, warn, warn_once
from .records import STREAM_EXTENSION, STREAM_TYPES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .http11 import Response
    from .records import Entry, RecordConverter

#: Loki 2.x's answer to structured metadata (pkg/validation: DisallowedStructuredMetadataErrorMsg
#: "… includes structured metadata, but this feature is disallowed …"); some proxies say "not allowed".
_SM_REJECTION_HINTS = (
    "structured metadata, but this feature is disallowed",
    "structured metadata is not allowed",
)

if TYPE_CHECKING:
    Sender = Callable[[bytes, float], Response]


#: How many recent runtimeDone request ids are remembered (the SHUTDOWN drain asks for the last).
RUNTIME_DONE_MEMORY = 256


def metadata_rejected(resp: Response) -> bool:
    if resp.status != 400:
        return False
    text = resp.body[:4096].decode("utf-8", "replace").lower()
    return any(h in text for h in _SM_REJECTION_HINTS)


class Stats:
    """Counters, read by the lifecycle for reports and by tests."""

    def __init__(self) -> None:
        self.entries_received = 0
        self.entries_sent = 0
        self.requests_sent = 0
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
        self._stop = threading.Event()
        self._deadline = time.monotonic() + 3600.0  # replaced by the first event's deadline
        #: Request ids whose platform.runtimeDone arrived, oldest first (an ordered set).
        self._done: dict[str, None] = {}
        self.metadata_allowed = True
        self.stats = Stats()
        self._reported_drops = self.stats.drops()
        self._last_error: str | None = None
        #: Monotonic time before which Loki asked (Retry-After) not to be pushed to again.
        self._not_before = 0.0
        self._thread: threading.Thread | None = None

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
                self.stats.entries_received += len(conv.entries)
                self.stats.dropped_buffer_full += self._buffer.add(conv.entries, time.monotonic())
            self.stats.lambda_dropped_records += conv.lambda_dropped_records
            if conv.runtime_done:
                for rid in conv.runtime_done:
                    self._done[rid] = None
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

    def deadline(self) -> float:
        return self._deadline

    def start(self) -> None:
        self._thread = threading.Thread(target=self._sender_loop, name="loki-sender", daemon=True)
        self._thread.start()

    def pending(self) -> int:
        with self._cond:
            return len(self._buffer)

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

    def flush(self, deadline: float) -> bool:
        """Push everything queued now (main thread); True when the buffer was emptied in time."""
        while True:
            with self._cond:
                if not len(self._buffer) and not self._report_due():
                    return True
            if time.monotonic() >= deadline:
                return False
            if not self._push_once(lambda: deadline, time.sleep):
                return False

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
            self._buffer.settle(self._buffer.take(1 << 62))
            self.stats.dropped_shutdown += n
            return n

    # --- pushing ------------------------------------------------------------------
    def _due(self, now: float) -> float | None:
        """0 if a push is due now, else seconds until the age trigger (None: nothing queued)."""
        n = len(self._buffer)
        if not n:
            return 0.0 if self._report_due() else None
        if n >= self._batch_size:
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
        return 0.0 if self._stop.is_set() else self._deadline

    def _push_once(self, deadline: Callable[[], float], wait: Callable[[float], object]) -> bool:
        """Take one request's worth of entries and push it; False if time ran out (entries kept)."""
        with self._push_lock:
            report = self._drop_report_entry()
            with self._cond:
                taken = self._buffer.take(self._max_request_bytes)
            if not taken and report is None:
                return True
            entries: list[Entry] = [t[0] for t in taken]
            if report is not None:
                entries.append(report)
            ok = True
            try:
                ok = self._push_entries(entries, deadline, wait)
            finally:
                with self._cond:
                    if ok:
                        self._buffer.settle(taken)
                    else:
                        self._buffer.put_back(taken)
                        if report is not None:
                            self._reported_drops = {}  # report again next time
            return ok

    def _push_entries(self, entries: list[Entry], deadline: Callable[[], float],
                      wait: Callable[[float], object]) -> bool:
        for chunk, body in encode_requests(entries, self._labels, metadata=self.metadata_allowed,
                                           max_bytes=self._max_request_bytes):
            outcome = retry.push_with_retry(self._sender_for(body), deadline, wait=wait,
                                            not_before=self._not_before)
            self._not_before = outcome.retry_at or 0.0
            self.stats.requests_sent += 1
            if outcome.result == retry.OK:
                self.stats.entries_sent += len(chunk)
                self._last_error = None
                continue
            if outcome.result == retry.REJECTED and outcome.response is not None:
                if self.metadata_allowed and metadata_rejected(outcome.response):
                    # Loki 2.x rejected the whole request: nothing stored, so re-send all without metadata.
                    self.metadata_allowed = False
                    warn("Loki does not accept structured metadata (Loki 2.x?); request_id and level "
                         "now go into the line instead")
                    return self._push_entries(list(chunk), deadline, wait)
                resp = outcome.response
                # Our own drop-report line is not a user entry: counting it would make a new
                # report due, which Loki rejects again, and so on (a push loop).
                lost = sum(1 for e in chunk if not _is_report(e))
                self.stats.dropped_rejected += lost
                warn(f"Loki at {self._url} rejected a push of {lost} entries with HTTP {resp.status}: "
                     f"{resp.body[:300].decode('utf-8', 'replace').strip()} (not retried; Loki keeps the "
                     "valid entries of a 400, so up to that many may be missing)")
                continue
            if outcome.last_error and outcome.last_error != self._last_error:
                self._last_error = outcome.last_error
                warn(f"cannot push to Loki at {self._url}: {outcome.last_error}; "
                     "will retry while time is left")
            return False
        return True

    def _sender_for(self, body: bytes) -> Callable[[float], Response]:
        return lambda timeout: self._send(body, timeout)

    def _report_due(self) -> bool:
        drops = self.stats.drops()
        return drops != self._reported_drops and any(drops.values())

    def _drop_report_entry(self) -> Entry | None:
        """A Loki line (type="extension") when drop counters moved since the last report."""
        drops = self.stats.drops()
        if drops == self._reported_drops or not any(drops.values()):
            return None
        self._reported_drops = drops
        text = ", ".join(f"{k}={v}" for k, v in drops.items())
        warn(f"log entries lost so far: {text}")
        return (STREAM_EXTENSION, time.time_ns(), f"{MARKER} log entries lost so far: {text}", None)


def _is_report(entry: Entry) -> bool:
    return entry[0] == STREAM_EXTENSION and entry[3] is None and entry[2].startswith(MARKER)


def stream_labels(function_name: str, static: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Label set per stream index (see records.STREAM_TYPES)."""
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
