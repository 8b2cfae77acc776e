"""How much each invoke wrote, and the high-water mark that keeps room for the next one.

The mark is checked when an INVOKE arrives, before that invoke has written anything: the room
above it must hold what the invoke will write. A fixed percentage alone does not: with a slow
Loki the backlog sits just under the mark, and an invoke that writes half the buffer then
evicts the oldest lines. So the mark is also lowered to leave room for the largest invoke of the
last VOLUME_MEMORY. While the previous invoke's lines may still be on their way (its
platform.runtimeDone, delivered after them, has not arrived) the invoke that just started
writes on top of an unknown remainder: the mark is then halved and the room doubled.
"""

from __future__ import annotations

from collections import deque

#: Invokes remembered for the largest-invoke estimate: about 2 s of dense traffic at 10/s, so
#: one large invoke keeps the room open for the large invokes that usually follow it.
VOLUME_MEMORY = 16


def high_water_mark(max_buffer_bytes: int, percent: int, largest_invoke: int, previous_done: bool) -> int:
    """Held bytes from which a push before ``next`` is due (0: push everything first).

    While the previous invoke's lines may still be arriving, their size is unknown: the
    percentage is halved and the room kept doubled."""
    if previous_done:
        mark, reserve = max_buffer_bytes * percent // 100, largest_invoke
    else:
        mark, reserve = max_buffer_bytes * percent // 200, 2 * largest_invoke
    return max(0, min(mark, max_buffer_bytes - reserve))


class InvokeVolumes:
    """Buffer bytes accepted per invoke: from one platform.runtimeDone to the next."""

    def __init__(self, memory: int = VOLUME_MEMORY) -> None:
        self._closed: deque[int] = deque(maxlen=memory)
        self._open = 0

    def add(self, cost: int) -> None:
        """Bytes the buffer accepted (before any eviction)."""
        self._open += cost

    def invoke_done(self) -> None:
        """A platform.runtimeDone arrived: what came since the previous one was its invoke's."""
        self._closed.append(self._open)
        self._open = 0

    def largest(self) -> int:
        """The largest remembered invoke, the one still being written included."""
        return max(self._open, max(self._closed, default=0))
