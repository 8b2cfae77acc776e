"""Plain data the receiver hands to tests: stored entries and request records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

_NO_METADATA: Mapping[str, str] = MappingProxyType({})

#: An HTTP answer: status, body, Content-Type, extra headers.
Response = tuple[int, bytes, str, tuple[tuple[str, str], ...]]


class StoredEntry(NamedTuple):
    """One log entry as Loki stored it (a NamedTuple: cheap to build at 100k+ entries per second)."""

    labels: Mapping[str, str]
    ts_ns: int
    line: str
    metadata: Mapping[str, str] = _NO_METADATA
    #: X-Scope-OrgID the entry was pushed with (None when absent and tenancy is off).
    tenant: str | None = None
    #: Wall clock (time.time_ns) when the receiver stored it: for delivery-latency figures.
    stored_at_ns: int = 0


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the receiver answered (push, query or fault), for assertions."""

    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    #: Entries in the decoded body (0 when the body never got decoded).
    entries_received: int = 0
    #: Entries stored (partial acceptance: may be > 0 on a 400).
    entries_accepted: int = 0
    #: Body size on the wire (compressed when Content-Encoding was set).
    body_bytes: int = 0
    #: The response body for errors ("" for 2xx).
    error: str = ""
    #: What answered: "loki" (normal path) or the fault that did ("outage", "rate_limit", ...).
    answered_by: str = "loki"
    #: Wall clock (time.time_ns) when the request was answered.
    at_ns: int = 0
    #: The client's TCP port: requests sharing one came over one kept-alive connection.
    client_port: int = 0

    @property
    def tenant(self) -> str | None:
        return self.headers.get("x-scope-orgid")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")
