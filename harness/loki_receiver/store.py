"""Thread-safe in-memory log store: streams, counts, waits and Loki-shaped queries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .model import StoredEntry
from .selector import Selector
from .validation import Stream

#: Tenant every entry belongs to when tenancy is off (Loki's auth_enabled=false uses "fake").
NO_AUTH_TENANT = "fake"


@dataclass
class _StoredStream:
    labels: dict[str, str]
    entries: list[StoredEntry] = field(default_factory=list)
    #: (ts_ns, line) pairs already stored: Loki keeps identical pairs in a stream once.
    seen: set[tuple[int, str]] = field(default_factory=set)


class Store:
    """Entries grouped by (scope tenant, label set), guarded by one Condition."""

    def __init__(self, *, dedupe: bool = True) -> None:
        self._dedupe = dedupe
        self._cond = threading.Condition()
        self._streams: dict[tuple[str, tuple[tuple[str, str], ...]], _StoredStream] = {}
        self._total = 0
        self._duplicates = 0

    # --- writing -------------------------------------------------------------

    def add(self, streams: Iterable[Stream], *, scope: str, tenant: str | None) -> int:
        """Store validated streams; returns how many entries were new (duplicates are dropped silently)."""
        now = time.time_ns()
        added = 0
        with self._cond:
            for s in streams:
                key = (scope, tuple(sorted(s.labels.items())))
                stored = self._streams.get(key)
                if stored is None:
                    stored = self._streams[key] = _StoredStream(labels=dict(s.labels))
                for e in s.entries:
                    if self._dedupe:
                        pair = (e.ts_ns, e.line)
                        if pair in stored.seen:
                            self._duplicates += 1
                            continue
                        stored.seen.add(pair)
                    stored.entries.append(
                        StoredEntry(
                            labels=stored.labels,
                            ts_ns=e.ts_ns,
                            line=e.line,
                            metadata=e.metadata,
                            tenant=tenant,
                            stored_at_ns=now,
                        )
                    )
                    added += 1
            self._total += added
            if added:
                self._cond.notify_all()
        return added

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
