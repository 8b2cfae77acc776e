"""The shapes passed between the modules: entries, metadata and stream indexes.

Its own module so that ``records`` (which makes entries) and ``batch`` (which encodes
them) both depend on it and never on each other.
"""

from __future__ import annotations

#: ``Entry.stream`` values; the dispatcher maps each to a label set (see STREAM_TYPES).
STREAM_FUNCTION = 0
STREAM_PLATFORM = 1
STREAM_EXTENSION = 2
#: The ``type`` label value of each stream (None: the function's own output has no type label).
STREAM_TYPES: tuple[str | None, ...] = (None, "platform", "extension")

#: Structured metadata of one entry: request_id, level, tenant_id (in that order, each optional).
#: One dict is shared by every entry with the same values and is never mutated.
Metadata = dict[str, str]
#: ``(stream, ts_ns, line, metadata)``: a plain tuple, not an object (one per log line).
Entry = tuple[int, int, str, "Metadata | None"]
#: An entry as the buffer keeps it: ``(fragment, stream, metadata, arrival)``. ``fragment`` is the
#: UTF-8 JSON text ``["<ts>","<escaped line>"`` (the push body's value without its closing bracket):
#: encoded once when queued, it costs its length plus a fixed overhead instead of the ~290 bytes of
#: a tuple, an int and a str, and a push only joins fragments. ``arrival`` is a monotonic time.
Packed = tuple[bytes, int, "Metadata | None", float]
