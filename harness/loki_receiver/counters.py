"""Loki's ingestion counters: lines received and samples discarded, by tenant and reason."""

from __future__ import annotations

import threading
from collections.abc import Mapping


class Counters:
    """``loki_distributor_lines_received_total`` and ``loki_discarded_samples_total``, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._discarded: dict[tuple[str, str], int] = {}
        self._received: dict[str, int] = {}

    def add(self, tenant: str, received: int, discarded: Mapping[str, int]) -> None:
        with self._lock:
            self._received[tenant] = self._received.get(tenant, 0) + received
            for reason, n in discarded.items():
                self._discarded[(tenant, reason)] = self._discarded.get((tenant, reason), 0) + n

    def discarded(self) -> dict[str, int]:
        """Discarded samples by reason, summed over tenants."""
        out: dict[str, int] = {}
        with self._lock:
            for (_, reason), n in self._discarded.items():
                out[reason] = out.get(reason, 0) + n
        return out

    def reset(self) -> None:
        with self._lock:
            self._discarded.clear()
            self._received.clear()

    def prometheus_text(self, duplicates: int) -> str:
        """The counters in Prometheus text exposition format (what ``/metrics`` serves)."""
        with self._lock:
            discarded = sorted(self._discarded.items())
            received = sorted(self._received.items())
        lines = ["# TYPE loki_discarded_samples_total counter"]
        lines += [
            f'loki_discarded_samples_total{{reason="{reason}",tenant="{tenant}"}} {n}'
            for (tenant, reason), n in discarded
        ]
        lines.append("# TYPE loki_distributor_lines_received_total counter")
        lines += [f'loki_distributor_lines_received_total{{tenant="{t}"}} {n}' for t, n in received]
        lines.append("# TYPE loki_receiver_duplicate_entries_total counter")
        lines.append(f"loki_receiver_duplicate_entries_total {duplicates}")
        return "\n".join(lines) + "\n"
