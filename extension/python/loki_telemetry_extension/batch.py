"""Pure data: the bounded entry buffer, line splitting and Loki push-body encoding.

No threads, no I/O, no clocks (callers pass ``now``): everything here is easy to test.
"""

from __future__ import annotations

from collections import deque
from json.encoder import encode_basestring as _esc  # the C escaper, ensure_ascii=False

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .entries import Entry, Metadata, Packed

#: Largest uncompressed JSON body per push (Promtail/Alloy's batch size); gzip only shrinks it.
MAX_REQUEST_BYTES = 1024 * 1024
#: Memory a queued entry costs beyond its fragment's length: tracemalloc measures 112-114 bytes
#: on CPython 3.10-3.13 (the 4-tuple with its GC header, the bytes object's header, the deque
#: slot; tests/extension/test_batch.py checks it), plus up to ~20 for the allocator's rounding to
#: 16 bytes. The arrival time and the metadata dict are shared by many entries.
ENTRY_OVERHEAD = 136
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


def fragment(ts: int, line: str) -> bytes:
    """``["<ts>","<escaped line>"``: one push-body value without its metadata and closing bracket."""
    return f'["{ts}",{_esc(line)}'.encode("utf-8", "surrogatepass")


def pack(entries: Iterable[Entry], now: float) -> list[Packed]:
    """Entries as the buffer keeps them (see ``entries.Packed``)."""
    return [(f'["{ts}",{_esc(line)}'.encode("utf-8", "surrogatepass"), stream, meta, now)
            for stream, ts, line, meta in entries]


def entry_size(entry: Entry) -> int:
    """What one entry costs in the buffer (and, near enough, in a request body)."""
    return len(fragment(entry[1], entry[2])) + ENTRY_OVERHEAD


def packed_size(item: Packed) -> int:
    return len(item[0]) + ENTRY_OVERHEAD


def fold_metadata(line: str, meta: Metadata | None) -> str:
    """For a Loki without structured metadata: append what the line does not already say."""
    if not meta:
        return line
    extra = [f"{k}={v}" for k, v in meta.items() if v not in line]
    return f"{line} {' '.join(extra)}" if extra else line


def _fold_fragment(frag: bytes, meta: Metadata) -> bytes:
    """``fold_metadata`` on a fragment: `` k=v`` go inside the line's closing quote."""
    start = frag.index(b'",') + 2  # the escaped line, quotes included
    escaped = frag[start:]
    line: str | None = None
    extra = []
    for k, v in meta.items():
        # Escaping maps each character on its own, so a value absent from the escaped line
        # is absent from the line; a hit may be inside an escape (v="n", line "\n"): decode.
        if _esc(v)[1:-1].encode("utf-8", "surrogatepass") in escaped:
            if line is None:
                import json

                line = json.loads(escaped.decode("utf-8", "surrogatepass"))
            if v in line:
                continue
        extra.append(f"{k}={v}")
    if not extra:
        return frag
    return frag[:-1] + _esc(" " + " ".join(extra))[1:].encode("utf-8", "surrogatepass")


def encode_packed(
    items: Sequence[Packed], stream_labels: Sequence[dict[str, str]], *, metadata: bool
) -> bytes:
    """The push body ``{"streams": [{"stream": {...}, "values": [[ts, line, {meta}], ...]}]}``.

    The values are the queued fragments joined; each distinct metadata dict (shared between
    the entries of one request id, see records) is rendered once per body.
    """
    import json

    values: dict[int, list[bytes]] = {}
    meta_json: dict[int, bytes] = {}
    for frag, stream, meta, _ in items:
        vals = values.get(stream)
        if vals is None:
            vals = values[stream] = []
        if meta and metadata:
            m = meta_json.get(id(meta))
            if m is None:
                m = meta_json[id(meta)] = (
                    ",{" + ",".join(f"{_esc(k)}:{_esc(v)}" for k, v in meta.items()) + "}]"
                ).encode("utf-8", "surrogatepass")
            vals.append(frag + m)
        elif meta:
            vals.append(_fold_fragment(frag, meta) + b"]")
        else:
            vals.append(frag + b"]")
    streams = b",".join(
        b'{"stream":' + json.dumps(stream_labels[s], ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass") + b',"values":[' + b",".join(v) + b"]}"
        for s, v in values.items()
    )
    return b'{"streams":[' + streams + b"]}"


def encode_json(
    entries: Sequence[Entry], stream_labels: Sequence[dict[str, str]], *, metadata: bool
) -> bytes:
    """``encode_packed`` for plain entries."""
    return encode_packed(pack(entries, 0.0), stream_labels, metadata=metadata)


def gzip_bytes(data: bytes) -> bytes:
    import zlib

    c = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip container
    return c.compress(data) + c.flush()


def encode_requests(
    items: Sequence[Packed], stream_labels: Sequence[dict[str, str]], *, metadata: bool,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> list[tuple[Sequence[Packed], bytes]]:
    """Gzip'd push bodies of at most ``max_bytes`` uncompressed each, with the items in each.

    Callers take batches by estimated size; metadata can push the real size over, so an
    oversized body is halved until it fits (a lone entry is sent whatever its size).
    """
    raw = encode_packed(items, stream_labels, metadata=metadata)
    if len(raw) <= max_bytes or len(items) <= 1:
        return [(items, gzip_bytes(raw))]
    mid = len(items) // 2
    return (encode_requests(items[:mid], stream_labels, metadata=metadata, max_bytes=max_bytes)
            + encode_requests(items[mid:], stream_labels, metadata=metadata, max_bytes=max_bytes))


class Buffer:
    """FIFO of packed entries bounded by their real memory cost; when full the oldest go
    (and are counted). ``held`` bytes include entries taken for a push and not yet
    finished, so memory stays bounded while a push is in flight."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._q: deque[Packed] = deque()
        self.queued_bytes = 0
        self.inflight_bytes = 0
        #: Everything ever accepted (before evictions): per-invoke volumes are its differences.
        self.accepted_bytes = 0

    def __len__(self) -> int:
        return len(self._q)

    @property
    def held_bytes(self) -> int:
        return self.queued_bytes + self.inflight_bytes

    def add(self, entries: Iterable[Entry], now: float) -> int:
        """Append; returns how many of the oldest queued entries were dropped to make room."""
        q = self._q
        items = pack(entries, now)
        q.extend(items)
        cost = sum([len(t[0]) for t in items]) + ENTRY_OVERHEAD * len(items)
        self.queued_bytes += cost
        self.accepted_bytes += cost
        dropped = 0
        while q and self.queued_bytes + self.inflight_bytes > self.max_bytes:
            self.queued_bytes -= len(q.popleft()[0]) + ENTRY_OVERHEAD
            dropped += 1
        return dropped

    def oldest_arrival(self) -> float | None:
        return self._q[0][3] if self._q else None

    def take(self, max_bytes: int) -> list[Packed]:
        """Remove entries from the front up to ``max_bytes`` (at least one); they are in flight."""
        out: list[Packed] = []
        size = 0
        q = self._q
        while q:
            s = len(q[0][0]) + ENTRY_OVERHEAD
            if out and size + s > max_bytes:
                break
            out.append(q.popleft())
            size += s
        self.queued_bytes -= size
        self.inflight_bytes += size
        return out

    def finish(self, taken: Sequence[Packed], leftover: Sequence[Packed] = ()) -> None:
        """The push of ``taken`` is over; ``leftover`` (a subsequence of it, in order) was not
        delivered and goes back to the front, oldest first."""
        self.inflight_bytes -= sum([len(t[0]) for t in taken]) + ENTRY_OVERHEAD * len(taken)
        if leftover:
            self.queued_bytes += sum([len(t[0]) for t in leftover]) + ENTRY_OVERHEAD * len(leftover)
            self._q.extendleft(reversed(leftover))
