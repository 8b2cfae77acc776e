"""``LokiReceiver``: a Loki-compatible push/query endpoint on 127.0.0.1 for tests, the demo and bench."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any

from . import query as q
from . import selector as sel
from .faults import Faults
from .limits import DEFAULT_DISCOVER_SERVICE_NAME, Limits
from .model import RequestRecord, StoredEntry
from .ratelimit import TenantRateLimiter
from .server import PUSH_PATHS, Server, current_client_port, decode_query
from .store import NO_AUTH_TENANT, Store
from .validation import PushError, decode_body, group_errors, parse_push, validate

SelectorLike = str | Mapping[str, str] | sel.Selector | None
_Response = tuple[int, bytes, str, tuple[tuple[str, str], ...]]
_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json; charset=UTF-8"


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
      structured_metadata: False = "Loki 2.x mode" (entries with structured metadata get 400).
      require_tenant: like ``auth_enabled: true``: X-Scope-OrgID required (401), tenants isolated.
      basic_auth: ("user", "password") a gateway would demand (401 otherwise).
      bearer_token: a token a gateway would demand (401 otherwise). With both set, either passes.
      max_line_size: Loki's ``max_line_size`` (bytes).
      rate_limit: enforce ``ingestion_rate_mb``/``ingestion_burst_size_mb`` per tenant (429).
      limits: any other Loki limit (see ``Limits``); the options above override it.
      discover_service_name: add ``service_name`` like Loki 3.x does (off: labels stay as pushed).
      reject_reserved_labels: 400 for label names starting with "__" (real Loki accepts them).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        structured_metadata: bool = True,
        require_tenant: bool = False,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        max_line_size: int | None = None,
        rate_limit: bool = False,
        limits: Limits | None = None,
        discover_service_name: bool = False,
        reject_reserved_labels: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"host must be a loopback address (127.0.0.0/8), got {host!r}")
        base = limits or Limits()
        overrides: dict[str, Any] = {
            "allow_structured_metadata": structured_metadata and base.allow_structured_metadata
        }
        if max_line_size is not None:
            overrides["max_line_size"] = max_line_size
        self.limits = replace(base, **overrides)
        self.require_tenant = require_tenant
        self.basic_auth = basic_auth
        self.bearer_token = bearer_token
        self.discover_service_name = DEFAULT_DISCOVER_SERVICE_NAME if discover_service_name else ()
        self.reject_reserved_labels = reject_reserved_labels
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
        # (tenant, reason) -> entries refused, and tenant -> lines received: Loki's
        # loki_discarded_samples_total / loki_distributor_lines_received_total.
        self._discarded: dict[tuple[str, str], int] = {}
        self._received: dict[str, int] = {}
        self._counters_lock = threading.Lock()
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
            server = Server((self._host, self._port), self)
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
        out: dict[str, int] = {}
        with self._counters_lock:
            for (_, reason), n in self._discarded.items():
                out[reason] = out.get(reason, 0) + n
        return out

    def metrics_text(self) -> str:
        """The receiver's counters in Prometheus text format (served on ``/metrics``)."""
        with self._counters_lock:
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
        lines.append(f"loki_receiver_duplicate_entries_total {self.duplicates}")
        return "\n".join(lines) + "\n"

    def _count(self, scope: str, received: int, discarded: Mapping[str, int]) -> None:
        with self._counters_lock:
            self._received[scope] = self._received.get(scope, 0) + received
            for reason, n in discarded.items():
                self._discarded[(scope, reason)] = self._discarded.get((scope, reason), 0) + n

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
        with self._counters_lock:
            self._discarded.clear()
            self._received.clear()
        if self._rate is not None:
            self._rate.reset()
        self.faults.clear()

    def _record(self, record: RequestRecord) -> None:
        if not record.client_port:
            record = replace(record, client_port=current_client_port())
        with self._requests_cond:
            self._requests.append(record)
            self._requests_cond.notify_all()

    # --- request handling (called from server threads) -----------------------

    def _auth_error(self, headers: Mapping[str, str]) -> str | None:
        if self.basic_auth is not None or self.bearer_token is not None:
            got = headers.get("authorization", "")
            ok = False
            if self.bearer_token is not None and got.startswith("Bearer "):
                ok = hmac.compare_digest(got[7:].encode(), self.bearer_token.encode())
            if not ok and self.basic_auth is not None and got.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(got[6:], validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    user, password = "", ""
                ok = hmac.compare_digest(f"{user}:{password}".encode(), ":".join(self.basic_auth).encode())
            if not ok:
                return "unauthorized: missing or wrong credentials"
        if self.require_tenant and not headers.get("x-scope-orgid"):
            return "no org id"
        return None

    def _scope(self, headers: Mapping[str, str]) -> str:
        # With tenancy off Loki files everything under "fake", whatever header was sent.
        return headers.get("x-scope-orgid", "") if self.require_tenant else NO_AUTH_TENANT

    def _handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Response:
        path, params = decode_query(raw_path, body if method == "POST" else b"", headers.get("content-type"))
        if path == "/ready":
            return self._simple(method, path, headers, 200, b"ready\n")
        if path == "/metrics":
            return self._simple(method, path, headers, 200, self.metrics_text().encode(),
                                "text/plain; version=0.0.4; charset=utf-8")
        if path in ("/loki/api/v1/status/buildinfo",):
            version = "3.4.0" if self.limits.allow_structured_metadata else "2.9.0"
            return self._simple(method, path, headers, 200, json.dumps({"version": version}).encode(), _JSON)
        auth = self._auth_error(headers)
        if auth is not None:
            self._record_simple(method, path, headers, 401, auth, len(body))
            extra = (("WWW-Authenticate", 'Basic realm="loki"'),) if self.basic_auth else ()
            return 401, (auth + "\n").encode(), _TEXT, extra
        if path in PUSH_PATHS:
            if method != "POST":
                return self._simple(method, path, headers, 405, b"405 method not allowed\n")
            return self._push(path, headers, body)
        try:
            if path == "/loki/api/v1/query_range":
                return self._query_range(method, path, headers, params)
            if path == "/loki/api/v1/query":
                return self._query_instant(method, path, headers, params)
            if path == "/loki/api/v1/labels":
                return self._labels(method, path, headers, params, None)
            if path.startswith("/loki/api/v1/label/") and path.endswith("/values"):
                name = path[len("/loki/api/v1/label/") : -len("/values")]
                return self._labels(method, path, headers, params, name)
            if path == "/loki/api/v1/series":
                return self._series(method, path, headers, params)
        except (q.QueryError, sel.SelectorError) as exc:
            return self._simple(method, path, headers, 400, (str(exc) + "\n").encode())
        return self._simple(method, path, headers, 404, b"404 page not found\n")

    def _simple(self, method: str, path: str, headers: Mapping[str, str], status: int, body: bytes,
                ctype: str = _TEXT) -> _Response:
        self._record_simple(method, path, headers, status, body.decode().strip() if status >= 400 else "", 0)
        return status, body, ctype, ()

    def _record_simple(self, method: str, path: str, headers: Mapping[str, str], status: int, error: str,
                       body_bytes: int) -> None:
        self._record(RequestRecord(method=method, path=path, status=status, headers=dict(headers),
                                   body_bytes=body_bytes, error=error, at_ns=time.time_ns()))

    def _push(self, path: str, headers: Mapping[str, str], body: bytes) -> _Response:
        tenant = headers.get("x-scope-orgid") or None
        received = accepted = 0
        try:
            data = decode_body(body, headers.get("content-encoding", ""), headers.get("content-type"))
            streams = parse_push(data)
            outcome = validate(
                streams,
                self.limits,
                reject_reserved_labels=self.reject_reserved_labels,
                discover_service_name=self.discover_service_name,
            )
            received = outcome.received
            scope = self._scope(headers)
            self._count(scope, received, outcome.discarded)
            # The tenant's rate limit is all or nothing (Loki's distributor AllowN).
            rate = self._rate
            if outcome.streams and rate is not None and not rate.allow(scope, outcome.accepted_bytes):
                lines = outcome.accepted
                self._count(scope, 0, {"rate_limited": lines})
                raise PushError(
                    429,
                    f"Ingestion rate limit exceeded for user {scope} (limit: {int(rate.rate)} "
                    f"bytes/sec) while attempting to ingest '{lines}' lines totaling "
                    f"'{outcome.accepted_bytes}' bytes, reduce log volume or contact your Loki "
                    "administrator to see if the limit can be increased",
                )
            # Partial acceptance: Loki stores the valid entries even when it answers 400.
            ingested = self._store.add(outcome.streams, scope=scope, tenant=tenant)
            accepted = ingested.added
            self._count(scope, 0, ingested.discarded)
            if ingested.errors:
                # The ingester's error (400 too far behind / 429 stream rate) wins over validation's.
                raise PushError(ingested.status, "\n".join(ingested.errors))
            if outcome.errors:
                raise PushError(400, group_errors(outcome.errors))
        except PushError as exc:
            self._record(RequestRecord(
                method="POST", path=path, status=exc.status, headers=dict(headers), entries_received=received,
                entries_accepted=accepted, body_bytes=len(body), error=exc.message, at_ns=time.time_ns(),
            ))
            return exc.status, (exc.message + "\n").encode(), _TEXT, ()
        self._record(RequestRecord(
            method="POST", path=path, status=204, headers=dict(headers), entries_received=received,
            entries_accepted=accepted, body_bytes=len(body), at_ns=time.time_ns(),
        ))
        return 204, b"", _TEXT, ()

    def _query_scope(self, headers: Mapping[str, str]) -> str | None:
        return self._scope(headers) if self.require_tenant else None

    def _query_range(self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str]
                     ) -> _Response:
        selector = sel.parse(params.get("query", ""))
        p = q.range_params(params, time.time_ns(), self.limits.max_entries_limit_per_query)
        found = self._store.select(selector, scope=self._query_scope(headers), start_ns=p.start_ns,
                                   end_ns=p.end_ns)
        flags = headers.get("x-loki-response-encoding-flags", "")
        doc = q.streams_result(found, p, categorize_labels="categorize-labels" in flags)
        return self._simple(method, path, headers, 200, json.dumps(doc).encode(), _JSON)

    def _query_instant(self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str]
                       ) -> _Response:
        selector = sel.parse(params.get("query", ""))
        if self.limits.allow_structured_metadata:
            # Loki 3.x refuses log selectors on the instant endpoint.
            raise q.QueryError(
                "log queries are not supported as an instant query type, please change your query to a range "
                "query type"
            )
        # Loki 2.x: entries up to `time`, newest first by default.
        at = q.parse_time(params.get("time"), time.time_ns())
        p = q.range_params({**params, "end": str(at + 1), "start": "0"}, time.time_ns(),
                           self.limits.max_entries_limit_per_query)
        found = self._store.select(selector, scope=self._query_scope(headers), start_ns=p.start_ns,
                                   end_ns=p.end_ns)
        doc = q.streams_result(found, p, categorize_labels=False)
        return self._simple(method, path, headers, 200, json.dumps(doc).encode(), _JSON)

    def _label_sets(self, headers: Mapping[str, str], params: Mapping[str, str]) -> list[Mapping[str, str]]:
        now = time.time_ns()
        end = q.parse_time(params.get("end"), now)
        since = params.get("since")
        since_s = q.parse_duration_s(since) if since else q.DEFAULT_LABELS_SINCE_S
        start = q.parse_time(params.get("start"), end - int(since_s * 1e9))
        query = params.get("query") or params.get("match[]")
        selector = sel.parse(query) if query else None
        return self._store.label_sets(scope=self._query_scope(headers), start_ns=start, end_ns=end + 1,
                                      selector=selector)

    def _labels(self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str],
                name: str | None) -> _Response:
        sets = self._label_sets(headers, params)
        doc = q.label_names(sets) if name is None else q.label_values(sets, name)
        return self._simple(method, path, headers, 200, json.dumps(doc).encode(), _JSON)

    def _series(self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str]
                ) -> _Response:
        if not (params.get("match[]") or params.get("query")):
            raise q.QueryError("at least one match[] argument is required")
        doc = q.series(self._label_sets(headers, params))
        return self._simple(method, path, headers, 200, json.dumps(doc).encode(), _JSON)

    def __repr__(self) -> str:
        return f"LokiReceiver(url={self.url!r}, stored={self.count()})"
