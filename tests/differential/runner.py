"""Send the corpus to one real Loki and one receiver, and collect both verdicts per case."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.loki_receiver import StoredEntry

from .corpus import Case, Push

#: A stored entry reduced to what both servers must agree on. Big lines are compared by
#: byte length and a 16-byte prefix (a query returning them whole would pass 4 MiB).
Row = tuple[tuple[tuple[str, str], ...], int, Any, tuple[tuple[str, str], ...]]

#: Loki's per-tenant ingestion limit (``ingestion_rate_mb`` 4, ``ingestion_burst_size_mb`` 6,
#: MiB). Real Loki always enforces it; the receiver here does not (its rate limit is opt-in),
#: so the runner paces the corpus to stay inside the bucket and no case meets a 429 by accident.
RATE_BYTES_PER_S = 4 * 1024 * 1024
BURST_BYTES = 6 * 1024 * 1024
#: How long to wait for flushed old entries to become queryable (1-5 s measured).
OLD_VISIBLE_TIMEOUT_S = 30.0
#: Headroom for what the bucket counts beyond the body (structured metadata Loki adds itself):
#: 10 %; the body's JSON syntax, which the bucket does not count, covers the rest.
PACE_MARGIN = 0.1


@dataclass
class Verdict:
    """What one server did with one case: each push's status and body, then what it stored."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    stored: list[Row] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return [f"{s // 100}xx" for s in self.statuses]


def send(port: int, push: Push) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(push.method, push.path, body=push.body if push.method != "GET" else None,
                     headers=dict(push.headers))
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


#: How many bytes of a big line are compared (with its byte length).
PREFIX_BYTES = 16
#: Loki's template cuts big lines down inside the server: "<byte length> <first 16 bytes>".
BIG_PIPELINE = '| line_format "{{ len __line__ }} {{ trunc 16 __line__ }}"'


def _prefix(line: str) -> str:
    # Go slices bytes; invalid UTF-8 at the cut comes back as U+FFFD in Loki's JSON.
    return line.encode()[:PREFIX_BYTES].decode("utf-8", "replace")


def rows(entries: Sequence[StoredEntry], big: bool, *, formatted: bool = False) -> list[Row]:
    """Sortable rows; `formatted`: the lines already went through BIG_PIPELINE."""
    out: list[Row] = []
    for e in entries:
        line: Any = e.line
        if formatted:
            size, _, prefix = e.line.partition(" ")
            line = (int(size), prefix)
        elif big:
            line = (len(e.line.encode()), _prefix(e.line))
        out.append((tuple(sorted(e.labels.items())), e.ts_ns, line, tuple(sorted(e.metadata.items()))))
    return sorted(out, key=repr)


def _plain_size(push: Push) -> int:
    """The push's body size once decompressed (what the rate limit roughly counts)."""
    if push.headers.get("Content-Encoding", "").lower() == "gzip":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            return len(gzip.decompress(push.body))
    return len(push.body)


class Pacer:
    """Loki's token bucket, mirrored on the client side: wait before a push that would not fit."""

    def __init__(self) -> None:
        self.tokens = float(BURST_BYTES)
        self.at = time.monotonic()

    def take(self, n: int) -> None:
        n = min(int(n * (1 + PACE_MARGIN)), BURST_BYTES)
        now = time.monotonic()
        self.tokens = min(BURST_BYTES, self.tokens + (now - self.at) * RATE_BYTES_PER_S)
        self.at = now
        if self.tokens < n:
            # Waiting for a time-based bucket to refill: the wait is the rule being modelled.
            time.sleep((n - self.tokens) / RATE_BYTES_PER_S)
            self.tokens = float(n)
            self.at = time.monotonic()
        self.tokens -= n


def run(
    cases: Sequence[Case],
    real_port: int,
    receiver_port: int,
    real_entries: Callable[[str, str], list[StoredEntry]],
    receiver_entries: Callable[[str], list[StoredEntry]],
    flush: Callable[[], None] | None,
) -> dict[str, tuple[Verdict, Verdict]]:
    """Send every push to real Loki then to the receiver, in corpus order; then read back.

    `real_entries(selector, pipeline)` and `receiver_entries(selector)` return stored entries;
    `flush` makes old entries queryable (None: the server cannot, read it without flushing).
    """
    out: dict[str, tuple[Verdict, Verdict]] = {}
    pacer = Pacer()
    for case in cases:
        real, fake = Verdict(), Verdict()
        for push in case.pushes:
            pacer.take(_plain_size(push))
            for port, verdict in ((real_port, real), (receiver_port, fake)):
                status, body = send(port, push)
                verdict.statuses.append(status)
                verdict.bodies.append(body.strip()[:600])
        out[case.name] = (real, fake)
    # Entries older than the ingester's store look-back (about 2.7 h) are visible only once
    # their chunks are flushed and indexed, which Loki does in the background after /flush.
    # Entries ahead of now are visible only before a flush (the store is not asked about the
    # future). So read the recent cases first, flush, then poll for the old ones.
    recent = [c for c in cases if not c.old or flush is None]
    old = [c for c in cases if c.old and flush is not None]
    for case in cases:
        out[case.name][1].stored = rows(receiver_entries(case.selector), case.big)
    _read_real(recent, out, real_entries)
    if flush is None:
        return out
    flush()
    deadline = time.monotonic() + OLD_VISIBLE_TIMEOUT_S
    while True:
        _read_real(old, out, real_entries)
        if all(out[c.name][0].stored == out[c.name][1].stored for c in old) or time.monotonic() >= deadline:
            break
        # Polling Loki's background flush: nothing to wait on from outside.
        time.sleep(0.5)
    return out


def _read_real(
    cases: Sequence[Case],
    out: dict[str, tuple[Verdict, Verdict]],
    real_entries: Callable[[str, str], list[StoredEntry]],
) -> None:
    """Real Loki's stored entries for `cases`: small ones in one query (a few hundred
    entries), big ones one case at a time, cut down by BIG_PIPELINE."""
    small = [c for c in cases if not c.big]
    if small:
        names = "|".join(re.escape(c.selector.split('"')[1]) for c in small)
        by_case: dict[str, list[StoredEntry]] = {}
        for e in real_entries(f'{{dcase=~"{names}"}}', ""):
            by_case.setdefault(e.labels.get("dcase", ""), []).append(e)
        for c in small:
            out[c.name][0].stored = rows(by_case.get(c.selector.split('"')[1], []), False)
    for c in cases:
        if c.big:
            out[c.name][0].stored = rows(real_entries(c.selector, BIG_PIPELINE), True, formatted=True)


def differences(real: Verdict, fake: Verdict) -> list[str]:
    """Human-readable differences between two verdicts ([] = the same)."""
    diffs = []
    if real.classes != fake.classes:
        diffs.append(f"status: real {real.statuses} {real.bodies} / receiver {fake.statuses} {fake.bodies}")
    if real.stored != fake.stored:
        only_real = [r for r in real.stored if r not in fake.stored]
        only_fake = [r for r in fake.stored if r not in real.stored]
        diffs.append(f"stored: only real {_short(only_real)} / only receiver {_short(only_fake)}")
    return diffs


def _short(rs: Sequence[Row]) -> str:
    text = repr(list(rs))
    return text if len(text) < 600 else text[:600] + "..."
