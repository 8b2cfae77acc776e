"""Loki's HTTP API behind the server: routing, the push path and the query endpoints.

One method per endpoint; every answered request is handed to ``record`` so tests can
see it. Faults are applied before this (in ``server``), auth here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from . import query as q
from . import selector as sel
from .auth import Auth
from .counters import Counters
from .limits import MAX_INGESTER_MESSAGE_BYTES, Limits
from .model import RequestRecord, Response
from .ratelimit import TenantRateLimiter
from .store import Store
from .validation import (
    PushError,
    decode_body,
    encoded_size,
    group_errors,
    parse_legacy_push,
    parse_push,
    validate,
)

#: The push path, and the legacy one Loki still serves (with its own JSON format).
PUSH_PATH = "/loki/api/v1/push"
LEGACY_PUSH_PATH = "/api/prom/push"
PUSH_PATHS = (PUSH_PATH, LEGACY_PUSH_PATH)

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class Api:
    def __init__(
        self,
        *,
        limits: Limits,
        store: Store,
        auth: Auth,
        counters: Counters,
        rate: TenantRateLimiter | None,
        record: Callable[[RequestRecord], None],
        discover_service_name: tuple[str, ...] = (),
    ) -> None:
        self.limits = limits
        self.store = store
        self.auth = auth
        self.counters = counters
        self.rate = rate
        self.record = record
        self.discover_service_name = discover_service_name

    # --- routing ---------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        path, params = decode_query(raw_path, body if method == "POST" else b"", headers.get("content-type"))
        if path == "/ready":
            return self._answer(method, path, headers, 200, b"ready\n")
        if path == "/metrics":
            text = self.counters.prometheus_text(self.store.duplicates)
            return self._answer(method, path, headers, 200, text.encode(), PROMETHEUS)
        if path == "/loki/api/v1/status/buildinfo":
            # structured_metadata=False in 3.x mode reads as a 2.9 server (what clients probe for).
            limits = self.limits
            mode = "2.9" if limits.mode == "3" and not limits.allow_structured_metadata else limits.mode
            version = {"3": "3.4.6", "2.9": "2.9.17", "2.7": "2.7.7"}[mode]
            return self._answer(method, path, headers, 200, json.dumps({"version": version}).encode(), JSON)
        denied = self.auth.error(headers)
        if denied is not None:
            self._record(method, path, headers, 401, denied, len(body))
            return 401, (denied + "\n").encode(), TEXT, self.auth.challenge()
        if path in PUSH_PATHS:
            if method != "POST":
                return self._answer(method, path, headers, 405, b"405 method not allowed\n")
            return self.push(path, headers, body)
        try:
            if path == "/loki/api/v1/query_range":
                return self.query_range(method, path, headers, params)
            if path == "/loki/api/v1/labels":
                return self.labels(method, path, headers, params)
        except (q.QueryError, sel.SelectorError) as exc:
            return self._answer(method, path, headers, 400, (str(exc) + "\n").encode())
        return self._answer(method, path, headers, 404, b"404 page not found\n")

    def _answer(
        self, method: str, path: str, headers: Mapping[str, str], status: int, body: bytes, ctype: str = TEXT
    ) -> Response:
        self._record(method, path, headers, status, body.decode().strip() if status >= 400 else "", 0)
        return status, body, ctype, ()

    def _record(
        self, method: str, path: str, headers: Mapping[str, str], status: int, error: str, body_bytes: int
    ) -> None:
        self.record(
            RequestRecord(
                method=method,
                path=path,
                status=status,
                headers=dict(headers),
                body_bytes=body_bytes,
                error=error,
                at_ns=time.time_ns(),
            )
        )

    # --- push ------------------------------------------------------------------

    def push(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Loki's distributor then ingester, in their order: decode, validate, rate-limit, store."""
        tenant = headers.get("x-scope-orgid") or None
        received = accepted = 0
        status, message = 204, ""
        try:
            data = decode_body(body, headers.get("content-encoding", ""), headers.get("content-type"))
            outcome = validate(
                parse_legacy_push(data) if path == LEGACY_PUSH_PATH else parse_push(data, self.limits),
                self.limits,
                discover_service_name=self.discover_service_name,
            )
            received = outcome.received
            scope = self.auth.scope(headers)
            self.counters.add(scope, received, outcome.discarded)
            # The tenant's rate limit is all or nothing (the distributor's AllowN).
            rate = self.rate
            if outcome.streams and rate is not None and not rate.allow(scope, outcome.accepted_bytes):
                lines = outcome.accepted
                self.counters.add(scope, 0, {"rate_limited": lines})
                raise PushError(
                    429,
                    f"Ingestion rate limit exceeded for user {scope} (limit: {int(rate.rate)} "
                    f"bytes/sec) while attempting to ingest '{lines}' lines totaling "
                    f"'{outcome.accepted_bytes}' bytes, reduce log volume or contact your Loki "
                    "administrator to see if the limit can be increased",
                )
            size = encoded_size(outcome.streams)
            if size > MAX_INGESTER_MESSAGE_BYTES:
                # The distributor's message to the ingester exceeds gRPC's 4 MiB: 500, nothing stored.
                raise PushError(
                    500,
                    "rpc error: code = ResourceExhausted desc = grpc: received message larger than max "
                    f"({size} vs. {MAX_INGESTER_MESSAGE_BYTES})",
                )
            # Partial acceptance: Loki stores the valid entries even when it answers 400.
            ingested = self.store.add(outcome.streams, scope=scope, tenant=tenant)
            accepted = ingested.added
            self.counters.add(scope, 0, ingested.discarded)
            if ingested.errors:
                # The ingester's error (400 too far behind / 429 stream rate) wins over validation's.
                raise PushError(ingested.status, "\n".join(ingested.errors))
            if outcome.errors:
                raise PushError(400, group_errors(outcome.errors))
        except PushError as exc:
            status, message = exc.status, exc.message
        self.record(
            RequestRecord(
                method="POST",
                path=path,
                status=status,
                headers=dict(headers),
                entries_received=received,
                entries_accepted=accepted,
                body_bytes=len(body),
                error=message,
                at_ns=time.time_ns(),
            )
        )
        return status, (message + "\n").encode() if message else b"", TEXT, ()

    # --- queries ---------------------------------------------------------------

    def query_range(
        self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str]
    ) -> Response:
        selector = sel.parse(params.get("query", ""))
        p = q.range_params(params, time.time_ns(), self.limits.max_entries_limit_per_query)
        found = self.store.select(
            selector, scope=self.auth.query_scope(headers), start_ns=p.start_ns, end_ns=p.end_ns
        )
        flags = headers.get("x-loki-response-encoding-flags", "")
        doc = q.streams_result(found, p, categorize_labels="categorize-labels" in flags)
        return self._answer(method, path, headers, 200, json.dumps(doc).encode(), JSON)

    def _label_sets(self, headers: Mapping[str, str], params: Mapping[str, str]) -> list[Mapping[str, str]]:
        end = q.parse_time(params.get("end"), time.time_ns())
        since = params.get("since")
        since_s = q.parse_duration_s(since) if since else q.DEFAULT_LABELS_SINCE_S
        start = q.parse_time(params.get("start"), end - int(since_s * 1e9))
        query = params.get("query") or params.get("match[]")
        selector = sel.parse(query) if query else None
        return self.store.label_sets(
            scope=self.auth.query_scope(headers), start_ns=start, end_ns=end + 1, selector=selector
        )

    def labels(
        self, method: str, path: str, headers: Mapping[str, str], params: Mapping[str, str]
    ) -> Response:
        doc = q.label_names(self._label_sets(headers, params))
        return self._answer(method, path, headers, 200, json.dumps(doc).encode(), JSON)


def decode_query(path: str, body: bytes, content_type: str | None) -> tuple[str, dict[str, str]]:
    """Path and parameters from the query string and (for POST) a form body."""
    parts = urlsplit(path)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if body and (content_type or "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return unquote(parts.path), params
