"""Count what a Loki holds, through Loki's query API (one code path for the local receiver and a real Loki).

``GET /loki/api/v1/query_range`` with a stream selector, paged forward in time: Loki caps
each answer at ``limit`` entries (``max_entries_limit_per_query``, 5,000 by default).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loki_telemetry_construct import envvars

PAGE_LIMIT = 5_000
ENCODING_FLAGS_HEADER = "X-Loki-Response-Encoding-Flags"
REQUEST_TIMEOUT_S = 30.0
#: How often to ask again while waiting for a real Loki's ingesters to make entries queryable.
POLL_INTERVAL_S = 0.5


def base_url(push_url: str) -> str:
    """``https://host/loki/api/v1/push`` → ``https://host`` (the query API lives beside push)."""
    if push_url.endswith(envvars.LOKI_PUSH_PATH):
        return push_url[: -len(envvars.LOKI_PUSH_PATH)]
    parts = urllib.parse.urlsplit(push_url)
    return f"{parts.scheme}://{parts.netloc}"


def label_key(labels: Mapping[str, str]) -> str:
    """A stream's label set in LogQL's own notation, sorted: ``{app="x", function="y"}``."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass
class QueryResult:
    """Entries found per label set (label_key → list of (ts_ns, line))."""

    streams: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    def count(self, predicate: Callable[[Mapping[str, str]], bool] | None = None) -> int:
        return sum(
            len(values)
            for key, values in self.streams.items()
            if predicate is None or predicate(self.labels[key])
        )


class LokiQuery:
    """A client for one Loki's query API."""

    def __init__(self, push_url: str, *, headers: Mapping[str, str] | None = None) -> None:
        self.base = base_url(push_url)
        # Loki 3 folds structured metadata (request_id, level) into the stream labels of query
        # answers unless asked not to: keep streams by their real label sets.
        self.headers = {ENCODING_FLAGS_HEADER: "categorize-labels", **(headers or {})}

    def query_range(self, selector: str, start_ns: int, end_ns: int) -> QueryResult:
        """Every entry of ``selector`` in ``[start_ns, end_ns]``, paging until a page comes back short."""
        result = QueryResult()
        seen: set[tuple[str, int, str]] = set()
        cursor = start_ns
        while True:
            page = self._get(
                "/loki/api/v1/query_range",
                {
                    "query": selector,
                    "start": str(cursor),
                    "end": str(end_ns),
                    "limit": str(PAGE_LIMIT),
                    "direction": "forward",
                },
            )
            entries = 0
            last_ts = cursor
            for stream in page.get("data", {}).get("result", []):
                labels = {str(k): str(v) for k, v in stream.get("stream", {}).items()}
                key = label_key(labels)
                for ts_raw, line, *_ in stream.get("values", []):
                    ts = int(ts_raw)
                    entries += 1
                    last_ts = max(last_ts, ts)
                    # The next page starts at the last timestamp (inclusive): skip what was already counted.
                    if (key, ts, line) in seen:
                        continue
                    seen.add((key, ts, line))
                    result.labels[key] = labels
                    result.streams.setdefault(key, []).append((ts, line))
            if entries < PAGE_LIMIT or last_ts == cursor:
                return result
            cursor = last_ts

    def wait_for(
        self, selector: str, start_ns: int, end_ns: int, done: Callable[[QueryResult], bool], timeout_s: float
    ) -> QueryResult:
        """Query until ``done(result)`` or the deadline (a real Loki indexes pushes with a short delay)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query_range(selector, start_ns, end_ns)
            if done(result) or time.monotonic() >= deadline:
                return result
            time.sleep(POLL_INTERVAL_S)  # poll interval; the condition is checked on every pass

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=self.headers)
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            body: dict[str, Any] = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Loki query {url} answered {body!r}")
        return body
