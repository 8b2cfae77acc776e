"""Pure data: the bounded entry buffer, line splitting and Loki push-body encoding.

No threads, no I/O, no clocks (callers pass ``now``): everything here is easy to test.
"""

from __future__ import annotations

from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .records import Entry, Metadata

#: Largest uncompressed JSON body per push (Promtail/Alloy's batch size); gzip only shrinks it.
MAX_REQUEST_BYTES = 1024 * 1024
#: Bytes an entry costs beyond its line: timestamp, quotes, brackets, tuple and bookkeeping.
ENTRY_OVERHEAD = 64
#: Metadata is at most a request id and a level.
METADATA_OVERHEAD = 64
#: Log lines compress ~10x even at level 1; higher levels cost CPU the function pays for.
GZIP_LEVEL = 1
#: Room kept in each split part for the " [split i/n]" marker.
SPLIT_RESERVE = 32


def split_line(line: str, max_bytes: int) -> list[str]:
    """Split a line longer than ``max_bytes`` (UTF-8) into marked parts that each fit.

    Cuts never fall inside a UTF-8 sequence; each part ends with `` [split i/n]``.
    """
    data = line.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return [line]
    room = max(1, max_bytes - SPLIT_RESERVE)
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(start + room, len(data))
        while end < len(data) and end > start + 1 and (data[end] & 0xC0) == 0x80:
            end -= 1  # back off to a character boundary
        pieces.append(data[start:end])
        start = end
    n = len(pieces)
    return [f"{p.decode('utf-8', 'surrogatepass')} [split {i}/{n}]" for i, p in enumerate(pieces, 1)]


def entry_size(entry: Entry) -> int:
    """Cheap estimate of an entry's share of memory and of a request body."""
    return len(entry[2]) + ENTRY_OVERHEAD + (METADATA_OVERHEAD if entry[3] else 0)


def fold_metadata(line: str, meta: Metadata | None) -> str:
    """For a Loki without structured metadata: append what the line does not already say."""
    if not meta:
        return line
    extra = [f"{k}={v}" for k, v in meta.items() if v not in line]
    return f"{line} {' '.join(extra)}" if extra else line


def encode_json(
    entries: Sequence[Entry], stream_labels: Sequence[dict[str, str]], *, metadata: bool
) -> bytes:
    """The push body ``{"streams": [{"stream": {...}, "values": [[ts, line, {meta}], ...]}]}``.

    Written as string fragments with the C string escaper rather than by ``json.dumps`` of
    nested lists and dicts: this runs for every line, and the metadata objects are shared
    between the lines of one request (see records), so each is rendered once per body.
    """
    import json
    from json.encoder import encode_basestring as esc  # the C escaper, ensure_ascii=False

    values: dict[int, list[str]] = {}
    meta_json: dict[int, str] = {}
    for stream, ts, line, meta in entries:
        vals = values.get(stream)
        if vals is None:
            vals = values[stream] = []
        if meta and metadata:
            m = meta_json.get(id(meta))
            if m is None:
                m = meta_json[id(meta)] = ",{" + ",".join(f"{esc(k)}:{esc(v)}" for k, v in meta.items()) + "}"
            vals.append(f'["{ts}",{esc(line)}{m}]')
        elif meta:
            vals.append(f'["{ts}",{esc(fold_metadata(line, meta))}]')
        else:
            vals.append(f'["{ts}",{esc(line)}]')
    streams = ",".join(
        '{"stream":' + json.dumps(stream_labels[s], ensure_ascii=False, separators=(",", ":"))
        + ',"values":[' + ",".join(v) + "]}"
        for s, v in values.items()
    )
    return ('{"streams":[' + streams + "]}").encode("utf-8", "surrogatepass")


def gzip_bytes(data: bytes) -> bytes:
    import zlib

    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip container
    return c.compress(data) + c.flush()


def encode_requests(
    entries: Sequence[Entry], stream_labels: Sequence[dict[str, str]], *, metadata: bool,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> list[tuple[Sequence[Entry], bytes]]:
    """Gzip'd push bodies of at most ``max_bytes`` uncompressed each, with the entries in each.

    Callers take batches by estimated size; escaping can push the real size over, so an
    oversized body is halved until it fits (a lone entry is sent whatever its size).
    """
    raw = encode_json(entries, stream_labels, metadata=metadata)
    if len(raw) <= max_bytes or len(entries) <= 1:
        return [(entries, gzip_bytes(raw))]
    mid = len(entries) // 2
    return (encode_requests(entries[:mid], stream_labels, metadata=metadata, max_bytes=max_bytes)
            + encode_requests(entries[mid:], stream_labels, metadata=metadata, max_bytes=max_bytes))


class Buffer:
    """FIFO of entries bounded by estimated bytes; when full the oldest go (and are counted).

    Items are ``(entry, arrival, size)``. ``held`` bytes include entries taken for a push
    and not yet settled, so memory stays bounded while a push is in flight.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._q: deque[tuple[Entry, float, int]] = deque()
        self.queued_bytes = 0
        self.inflight_bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._q)

    @property
    def held_bytes(self) -> int:
        return self.queued_bytes + self.inflight_bytes

    def add(self, entries: Iterable[Entry], now: float) -> int:
        """Append; returns how many of the oldest queued entries were dropped to make room."""
        q = self._q
        plain, with_meta = ENTRY_OVERHEAD, ENTRY_OVERHEAD + METADATA_OVERHEAD
        items = [(e, now, len(e[2]) + (with_meta if e[3] else plain)) for e in entries]
        q.extend(items)
        self.queued_bytes += sum([t[2] for t in items])
        dropped = 0
        while q and self.queued_bytes + self.inflight_bytes > self.max_bytes:
            self.queued_bytes -= q.popleft()[2]
            dropped += 1
        self.dropped += dropped
        return dropped

    def oldest_arrival(self) -> float | None:
        return self._q[0][1] if self._q else None

    def take(self, max_bytes: int) -> list[tuple[Entry, float, int]]:
        """Remove entries from the front up to ``max_bytes`` (at least one); they are in flight."""
        out: list[tuple[Entry, float, int]] = []
        size = 0
        q = self._q
        while q:
            s = q[0][2]
            if out and size + s > max_bytes:
                break
            out.append(q.popleft())
            size += s
        self.queued_bytes -= size
        self.inflight_bytes += size
        return out

    def settle(self, taken: Sequence[tuple[Entry, float, int]]) -> None:
        """The push of ``taken`` is over (delivered or given up on)."""
        self.inflight_bytes -= sum(t[2] for t in taken)

    def put_back(self, taken: Sequence[tuple[Entry, float, int]]) -> None:
        """A push ran out of time: its entries go back to the front, oldest first."""
        size = sum(t[2] for t in taken)
        self.inflight_bytes -= size
        self.queued_bytes += size
        self._q.extendleft(reversed(taken))
