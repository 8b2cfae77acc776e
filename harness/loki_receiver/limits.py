"""Loki's per-tenant limits that the receiver enforces, with Loki 3.x defaults.

Names follow Loki's ``limits_config`` keys so a test reads like a Loki config.
Sources (grafana/loki): ``pkg/validation/limits.go`` (defaults),
``pkg/distributor/validator.go`` (how each limit is applied).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

#: Loki majors the receiver can behave like (see ``Limits.for_version``).
Mode = Literal["2.7", "2.9", "3"]
MODES: tuple[Mode, ...] = ("2.7", "2.9", "3")

#: The ingester's ``grpc_server_max_recv_msg_size`` default (4 MiB): a push whose streams
#: encode bigger than this fails between distributor and ingester with a 500, stored nowhere.
MAX_INGESTER_MESSAGE_BYTES = 4 << 20

#: Loki 3.x ``log_level_fields`` default: where ``detected_level`` is read from first.
LOG_LEVEL_FIELDS = ("level", "LEVEL", "Level", "Severity", "severity", "SEVERITY", "lvl", "LVL", "Lvl")

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
    """The subset of Loki's ``limits_config`` the receiver applies (defaults = Loki 3.4).

    The last group of fields is not configurable in Loki: it is how each major version
    behaves (see ``for_version``).
    """

    #: "256KB": flagext.ByteSize reads it in binary units, so 262,144 bytes (measured on 3.4.6).
    max_line_size: int = 262_144
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
    #: "64KB" in binary units: 65,536 bytes of names + values per entry (measured on 3.4.6).
    max_structured_metadata_size: int = 65_536
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
    #: Loki 3.x ``discover_log_levels``: add ``detected_level`` structured metadata. Off here
    #: unless asked for, so stored metadata is what was pushed.
    discover_log_levels: bool = False

    # --- how the version behaves ---------------------------------------------------
    #: The major version modelled.
    mode: Mode = "3"
    #: 2.7 predates structured metadata: an object as an entry's third element fails the
    #: JSON decoding of the whole push; a string there is ignored.
    structured_metadata_known: bool = True
    #: 3.x answers a push with no streams with 422; 2.x with 204.
    empty_push_status: int = 422
    #: 2.x drops entries whose line is empty, silently.
    drop_empty_lines: bool = False
    #: 2.9 stores label values as their JSON text, escapes included (``\u00e9`` stays six
    #: characters); 2.7 and 3.x decode them.
    raw_label_values: bool = False
    #: 3.x stores structured metadata values as their JSON text, escapes included.
    raw_metadata_values: bool = True
    #: 2.7 and 3.x read a number as a label value (its JSON text); 2.9 refuses the push.
    number_label_values: bool = True
    #: The documentation link in the "disallowed" message: 2.9 names a key that 3.x renamed.
    disallowed_metadata_key: str = "allow_structured_metadata"

    @classmethod
    def for_version(cls, mode: Mode, **overrides: object) -> Limits:
        """Each version's defaults (what ``GET /config`` shows on 2.7.7, 2.9.17 and 3.4.6)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        base = cls()
        if mode != "3":
            base = replace(
                base,
                mode=mode,
                max_line_size=0,
                max_label_names_per_series=30,
                allow_structured_metadata=False,
                empty_push_status=204,
                drop_empty_lines=True,
                raw_metadata_values=False,
                structured_metadata_known=mode != "2.7",
                raw_label_values=mode == "2.9",
                number_label_values=mode == "2.7",
                disallowed_metadata_key="structured_metadata",
            )
        return replace(base, **overrides)  # type: ignore[arg-type]
