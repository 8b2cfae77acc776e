"""Thread-safe in-memory log store: streams, counts, waits and Loki-shaped queries.

It also plays Loki's *ingester* when storing: per stream it drops exact duplicates
silently, refuses entries too far behind the stream's newest one (unordered-writes
window, 400) and, when enabled, applies the per-stream rate limit (429). Those
outcomes come back in :class:`Ingested` (``pkg/ingester/stream.go``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .model import StoredEntry
from .ratelimit import TokenBucket
from .selector import Selector
from .validation import Stream, labels_string


@dataclass
class _StoredStream:
    labels: dict[str, str]
    entries: list[StoredEntry] = field(default_factory=list)
    #: (ts_ns, line) pairs already stored: Loki keeps identical pairs in a stream once.
    seen: set[tuple[int, str]] = field(default_factory=set)
    highest_ts: int | None = None
    bucket: TokenBucket | None = None


#: Loki's ingester ``max_returned_stream_errors`` default.
MAX_RETURNED_ERRORS = 10


@dataclass
class Ingested:
    """What the ingester did with one push."""

    added: int = 0
    #: One Loki-style message per stream that had refused entries.
    errors: list[str] = field(default_factory=list)
    #: 429 when the last refusal of a stream was its rate limit, else 400 (Loki's rule).
    status: int = 0
    #: Entries refused, by Loki's discard reason.
    discarded: dict[str, int] = field(default_factory=dict)


class Store:
    """Entries grouped by (scope tenant, label set), guarded by one Condition."""

    def __init__(
        self,
        *,
        dedupe: bool = True,
        window_ns: int = 0,
        stream_rate: tuple[float, float] | None = None,
    ) -> None:
        """`window_ns`: unordered-writes window (0 = off); `stream_rate`: (bytes/s, burst) per stream."""
        self._dedupe = dedupe
        self._window_ns = window_ns
        self._stream_rate = stream_rate
        self._cond = threading.Condition()
        self._streams: dict[tuple[str, tuple[tuple[str, str], ...]], _StoredStream] = {}
        self._total = 0
        self._duplicates = 0

    # --- writing -------------------------------------------------------------

    def add(self, streams: Iterable[Stream], *, scope: str, tenant: str | None) -> Ingested:
        """Store validated streams like Loki's ingester; see :class:`Ingested` for the outcome."""
        now = time.time_ns()
        out = Ingested()
        with self._cond:
            for s in streams:
                key = (scope, tuple(sorted(s.labels.items())))
                stored = self._streams.get(key)
                if stored is None:
                    stored = self._streams[key] = _StoredStream(labels=dict(s.labels))
                    if self._stream_rate is not None:
                        stored.bucket = TokenBucket(*self._stream_rate)
                refused: list[tuple[int, str, bool]] = []
                for e in s.entries:
                    if self._window_ns and stored.highest_ts is not None:
                        cutoff = stored.highest_ts - self._window_ns
                        if e.ts_ns < cutoff:
                            refused.append((e.ts_ns, _too_far_behind(e.ts_ns, cutoff), False))
                            continue
                    if stored.bucket is not None and not stored.bucket.allow(len(e.line.encode())):
                        refused.append((e.ts_ns, _stream_rate_error(stored, e.line), True))
                        continue
                    if self._dedupe:
                        pair = (e.ts_ns, e.line)
                        if pair in stored.seen:
                            self._duplicates += 1
                            continue
                        stored.seen.add(pair)
                    if stored.highest_ts is None or e.ts_ns > stored.highest_ts:
                        stored.highest_ts = e.ts_ns
                    stored.entries.append(
                        StoredEntry(stored.labels, e.ts_ns, e.line, e.metadata, tenant, now)
                    )
                    out.added += 1
                for _, _, limited in refused:
                    reason = "per_stream_rate_limit" if limited else "too_far_behind"
                    out.discarded[reason] = out.discarded.get(reason, 0) + 1
                if refused:
                    out.errors.append(_stream_errors(refused, len(s.entries), scope, stored.labels))
                    out.status = 429 if refused[-1][2] else 400
            self._total += out.added
            if out.added:
                self._cond.notify_all()
        return out

    def clear(self) -> None:
        with self._cond:
            self._streams.clear()
            self._total = 0
            self._duplicates = 0
            self._cond.notify_all()

    # --- reading -------------------------------------------------------------

    @property
    def duplicates(self) -> int:
        with self._cond:
            return self._duplicates

    def _matching(self, selector: Selector | None, scope: str | None) -> list[_StoredStream]:
        return [
            s
            for (sc, _), s in self._streams.items()
            if (scope is None or sc == scope) and (selector is None or selector.matches(s.labels))
        ]

    def _count_locked(self, selector: Selector | None, scope: str | None, tenant: str | None) -> int:
        if selector is None and scope is None and tenant is None:
            return self._total
        streams = self._matching(selector, scope)
        if tenant is None:
            return sum(len(s.entries) for s in streams)
        return sum(1 for s in streams for e in s.entries if e.tenant == tenant)

    def count(
        self, selector: Selector | None = None, *, scope: str | None = None, tenant: str | None = None
    ) -> int:
        with self._cond:
            return self._count_locked(selector, scope, tenant)

    def wait_for_count(
        self,
        n: int,
        selector: Selector | None = None,
        *,
        timeout: float,
        tenant: str | None = None,
    ) -> bool:
        """Block until at least n entries match (woken by every store), or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count_locked(selector, None, tenant) >= n, timeout)

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until predicate() (evaluated under the store lock after each store) is true."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def entries(
        self, selector: Selector | None = None, *, scope: str | None = None, tenant: str | None = None
    ) -> list[StoredEntry]:
        """Matching entries, oldest first (by timestamp, then arrival)."""
        with self._cond:
            out = [
                e
                for s in self._matching(selector, scope)
                for e in s.entries
                if tenant is None or e.tenant == tenant
            ]
        out.sort(key=lambda e: e.ts_ns)
        return out

    def select(
        self, selector: Selector, *, scope: str | None, start_ns: int, end_ns: int
    ) -> list[StoredEntry]:
        """Entries of matching streams with start <= ts < end (Loki's range semantics)."""
        with self._cond:
            return [
                e
                for s in self._matching(selector, scope)
                for e in s.entries
                if start_ns <= e.ts_ns < end_ns
            ]

    def label_sets(
        self, *, scope: str | None, start_ns: int, end_ns: int, selector: Selector | None = None
    ) -> list[Mapping[str, str]]:
        """Label sets of streams with at least one entry in [start, end)."""
        with self._cond:
            return [
                s.labels
                for s in self._matching(selector, scope)
                if any(start_ns <= e.ts_ns < end_ns for e in s.entries)
            ]


def _go_time(ts_ns: int) -> str:
    """Go's ``time.Time.String()`` in UTC: ``2024-01-02 03:04:05.123 +0000 UTC``."""
    secs, frac = divmod(ts_ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    return f"{base}{fraction} +0000 UTC"


def _rfc3339(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _too_far_behind(ts_ns: int, cutoff_ns: int) -> str:
    return (
        f"entry too far behind, entry timestamp is: {_rfc3339(ts_ns)}, "
        f"oldest acceptable timestamp is: {_rfc3339(cutoff_ns)}"
    )


def _humanize_bytes(n: float) -> str:
    """go-humanize ``Bytes`` (SI units), as Loki's ``flagext.ByteSize.String()`` prints limits."""
    units = ["B", "kB", "MB", "GB", "TB"]
    if n < 10:
        return f"{int(n)} B"
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.0f} {units[i]}" if n >= 10 else f"{n:.1f} {units[i]}"


def _stream_rate_error(stored: _StoredStream, line: str) -> str:
    assert stored.bucket is not None
    limit = _humanize_bytes(stored.bucket.rate)
    size = _humanize_bytes(len(line.encode()))
    return (
        f"Per stream rate limit exceeded (limit: {limit}/sec) while attempting "
        f"to ingest for stream '{labels_string(stored.labels)}' totaling {size}, "
        "consider splitting a stream via additional labels or contact your Loki administrator to see if the "
        "limit can be increased"
    )


def _stream_errors(
    refused: list[tuple[int, str, bool]], total: int, scope: str, labels: Mapping[str, str]
) -> str:
    """The ingester's per-stream message: up to 10 ignored entries, then the totals."""
    lines = [f"entry with timestamp {_go_time(ts)} ignored, reason: '{msg}'," for ts, msg, _ in
             refused[:MAX_RETURNED_ERRORS]]
    lines.append(
        f"user '{scope}', total ignored: {len(refused)} out of {total} for stream: {labels_string(labels)}"
    )
    return "\n".join(lines)
