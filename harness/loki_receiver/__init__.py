"""A Loki-compatible receiver for tests, the demo and bench: validates pushes like Loki 3.4,
2.9 or 2.7 (``mode``), stores them in memory, injects faults and answers stream-selector queries.

See docs/harness-loki.md for what it checks and where it departs from real Loki.
"""

from __future__ import annotations

from .faults import Faults
from .limits import MODES, Limits, Mode
from .model import RequestRecord, StoredEntry
from .receiver import LokiReceiver
from .selector import Selector, SelectorError
from .selector import parse as parse_selector

__all__ = [
    "MODES",
    "Faults",
    "Limits",
    "LokiReceiver",
    "Mode",
    "RequestRecord",
    "Selector",
    "SelectorError",
    "StoredEntry",
    "parse_selector",
]
