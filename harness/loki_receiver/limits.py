"""Loki's per-tenant limits that the receiver enforces, with Loki 3.x defaults.

Names follow Loki's ``limits_config`` keys so a test reads like a Loki config.
Sources (grafana/loki): ``pkg/validation/limits.go`` (defaults),
``pkg/distributor/validator.go`` (how each limit is applied).
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``server.grpc_server_max_recv_msg_size`` / the push body limit: 100 MiB.
MAX_BODY_BYTES = 100 << 20

#: Labels Loki adds or uses itself; a stream carrying one is not counted against
#: ``max_label_names_per_series`` (Loki's ``push.LabelServiceName`` special case).
SERVICE_NAME_LABEL = "service_name"
UNKNOWN_SERVICE = "unknown_service"

#: Loki 3.x ``discover_service_name`` default: the first of these labels with a
#: value becomes ``service_name``; with none, ``unknown_service``.
DEFAULT_DISCOVER_SERVICE_NAME = (
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
)


@dataclass(frozen=True)
class Limits:
    """The subset of Loki's ``limits_config`` the receiver applies (defaults = Loki 3.x)."""

    #: "256KB" parsed by go-humanize: decimal kilobytes, so 256,000 bytes.
    max_line_size: int = 256_000
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    reject_old_samples: bool = True
    #: 168h
    reject_old_samples_max_age_s: float = 7 * 24 * 3600.0
    #: 10m
    creation_grace_period_s: float = 600.0
    #: False = "Loki 2.x mode": any structured metadata is rejected.
    allow_structured_metadata: bool = True
    #: "64KB" (go-humanize): 64,000 bytes of names + values per entry.
    max_structured_metadata_size: int = 64_000
    max_structured_metadata_entries_count: int = 128
    #: Only enforced when the receiver is built with ``rate_limit=True``.
    ingestion_rate_mb: float = 4.0
    ingestion_burst_size_mb: float = 6.0
    #: Per stream, at the ingester: "3MB" / "15MB" through go-humanize (decimal).
    #: Enforced only with rate_limit=True.
    per_stream_rate_limit: int = 3_000_000
    per_stream_rate_limit_burst: int = 15_000_000
    #: Unordered writes accept entries down to (newest in the stream - max_chunk_age / 2); 2h / 2.
    #: Older ones are "too far behind" (400). 0 turns the check off.
    unordered_writes_window_s: float = 3600.0
    #: Largest ``limit`` a log query may ask for.
    max_entries_limit_per_query: int = 5000
    #: Loki stores identical (timestamp, line) pairs in one stream once.
    dedupe: bool = True
