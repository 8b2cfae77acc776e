"""``LokiReceiver``: a Loki-compatible push/query endpoint on 127.0.0.1 for tests, the demo and bench."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

from . import selector as sel
from .api import PUSH_PATHS, Api
from .auth import Auth
from .counters import Counters
from .faults import Faults
from .limits import DEFAULT_DISCOVER_SERVICE_NAME, Limits, Mode
from .model import RequestRecord, StoredEntry
from .ratelimit import TenantRateLimiter
from .server import Handlers, Server, current_client_port
from .store import Store

SelectorLike = str | Mapping[str, str] | sel.Selector | None


def _to_selector(selector: SelectorLike) -> sel.Selector | None:
    if selector is None or isinstance(selector, sel.Selector):
        return selector
    if isinstance(selector, str):
        return sel.parse(selector)
    return sel.from_labels(selector)


class LokiReceiver:
    """A threaded HTTP server that validates pushes like Loki 3.x and stores them in memory.

    Use as a context manager (or ``start()``/``stop()``). Binds 127.0.0.1 only.

    Options (keyword-only):
      port: 0 = ephemeral.
      mode: the Loki version to behave like, "3" (3.4, the default), "2.9" or "2.7": limits,
        structured metadata handling and JSON decoding quirks (see ``Limits.for_version``).
      structured_metadata: False = refuse structured metadata with 400 (``allow_structured_metadata:
        false``) whatever the mode.
      require_tenant: like ``auth_enabled: true``: X-Scope-OrgID required (401), tenants isolated.
      basic_auth: ("user", "password") a gateway would demand (401 otherwise).
      bearer_token: a token a gateway would demand (401 otherwise). With both set, either passes.
      max_line_size: Loki's ``max_line_size`` (bytes).
      rate_limit: enforce the per-tenant ingestion rate and the per-stream rate limit (429).
      limits: any other Loki limit (see ``Limits``); the options above override it.
      discover_service_name: add ``service_name`` like Loki 3.x does (off: labels stay as pushed).
      discover_log_levels: add ``detected_level`` metadata like Loki 3.x does (off: metadata as pushed).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        mode: Mode = "3",
        structured_metadata: bool = True,
        require_tenant: bool = False,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        max_line_size: int | None = None,
        rate_limit: bool = False,
        limits: Limits | None = None,
        discover_service_name: bool = False,
        discover_log_levels: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"host must be a loopback address (127.0.0.0/8), got {host!r}")
        base = limits or Limits.for_version(mode)
        overrides: dict[str, Any] = {
            "allow_structured_metadata": structured_metadata and base.allow_structured_metadata,
            "discover_log_levels": discover_log_levels or base.discover_log_levels,
        }
        if max_line_size is not None:
            overrides["max_line_size"] = max_line_size
        self.limits = replace(base, **overrides)
        self.auth = Auth(require_tenant=require_tenant, basic_auth=basic_auth, bearer_token=bearer_token)
        self._host = host
        self._port = port
        self._store = Store(
            dedupe=self.limits.dedupe,
            window_ns=int(self.limits.unordered_writes_window_s * 1e9),
            stream_rate=(
                (float(self.limits.per_stream_rate_limit), float(self.limits.per_stream_rate_limit_burst))
                if rate_limit
                else None
            ),
        )
        self._rate = (
            TenantRateLimiter(self.limits.ingestion_rate_mb, self.limits.ingestion_burst_size_mb)
            if rate_limit
            else None
        )
        self._counters = Counters()
        self._api = Api(
            limits=self.limits,
            store=self._store,
            auth=self.auth,
            counters=self._counters,
            rate=self._rate,
            record=self._record,
            discover_service_name=(
                DEFAULT_DISCOVER_SERVICE_NAME if discover_service_name and self.limits.mode == "3" else ()
            ),
        )
        self._requests: list[RequestRecord] = []
        self._requests_cond = threading.Condition()
        self._server_lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self.faults = Faults(self._stop_listening, self._start_listening)

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> LokiReceiver:
        with self._server_lock:
            if self._started:
                return self
            self._started = True
        self._start_listening()
        return self

    def stop(self) -> None:
        with self._server_lock:
            self._started = False
        self.faults.close()
        self._stop_listening()

    def __enter__(self) -> LokiReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_listening(self) -> None:
        with self._server_lock:
            if self._server is not None or not self._started:
                return
            handlers = Handlers(
                handle=self._api.handle,
                record=self._record,
                gate=lambda path: self.faults.decide(path in PUSH_PATHS),
                hold=self.faults.hold,
            )
            server = Server((self._host, self._port), handlers)
            # Keep the port across outages, so clients reconnect to the same URL.
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"loki-receiver:{self._port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
            thread.start()

    def _stop_listening(self) -> None:
        with self._server_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if thread is not None:
            thread.join(timeout=5)

    # --- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """The push URL (what LOKI_URL should be)."""
        return f"{self.base_url}/loki/api/v1/push"

    # --- in-process inspection -----------------------------------------------

    def entries(self, selector: SelectorLike = None, *, tenant: str | None = None) -> list[StoredEntry]:
        """Stored entries, oldest first. `selector`: LogQL selector string, label dict, or None (all)."""
        return self._store.entries(_to_selector(selector), tenant=tenant)

    def lines(self, selector: SelectorLike = None, *, tenant: str | None = None) -> list[str]:
        return [e.line for e in self.entries(selector, tenant=tenant)]

    def count(self, selector: SelectorLike = None, *, tenant: str | None = None) -> int:
        return self._store.count(_to_selector(selector), tenant=tenant)

    def wait_for_count(
        self, n: int, selector: SelectorLike = None, *, timeout: float = 10.0, tenant: str | None = None
    ) -> bool:
        """True once at least `n` matching entries are stored; False after `timeout` seconds."""
        return self._store.wait_for_count(n, _to_selector(selector), timeout=timeout, tenant=tenant)

    @property
    def duplicates(self) -> int:
        """Entries dropped because the stream already held the same (timestamp, line)."""
        return self._store.duplicates

    @property
    def discarded(self) -> dict[str, int]:
        """Entries Loki would count in ``loki_discarded_samples_total``, by reason (all tenants).

        Reasons: Loki's own (``line_too_long``, ``greater_than_max_sample_age``, ``too_far_in_future``,
        ``rate_limited``, ``per_stream_rate_limit``, ``too_far_behind``, ``disallowed_structured_metadata``,
        ...). Requests refused whole before validation (bad JSON, bad label names, 401, 413, faults)
        are not samples: see ``requests`` for those.
        """
        return self._counters.discarded()

    def metrics_text(self) -> str:
        """The receiver's counters in Prometheus text format (served on ``/metrics``)."""
        return self._counters.prometheus_text(self.duplicates)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far (a copy), oldest first."""
        with self._requests_cond:
            return list(self._requests)

    def push_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.path in PUSH_PATHS]

    def wait_for_requests(self, n: int, *, timeout: float = 10.0, push_only: bool = True) -> bool:
        """True once `n` (push) requests have been answered (whatever their status)."""
        def enough() -> bool:
            rs = self._requests
            return (sum(1 for r in rs if r.path in PUSH_PATHS) if push_only else len(rs)) >= n

        with self._requests_cond:
            return self._requests_cond.wait_for(enough, timeout)

    def reset(self) -> None:
        """Forget stored entries, request records, rate-limit state and faults."""
        self._store.clear()
        with self._requests_cond:
            self._requests.clear()
        self._counters.reset()
        if self._rate is not None:
            self._rate.reset()
        self.faults.clear()

    def _record(self, record: RequestRecord) -> None:
        if not record.client_port:
            record = replace(record, client_port=current_client_port())
        with self._requests_cond:
            self._requests.append(record)
            self._requests_cond.notify_all()

    def __repr__(self) -> str:
        return f"LokiReceiver(url={self.url!r}, stored={self.count()})"
