"""Small real-HTTP client helpers for the Loki receiver tests (http.client only)."""

from __future__ import annotations

import gzip
import http.client
import json
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def now_ns() -> int:
    return time.time_ns()


def push_body(streams: list[tuple[dict[str, str], list[list[Any]]]]) -> bytes:
    return json.dumps({"streams": [{"stream": s, "values": v} for s, v in streams]}).encode()


def encode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw DEFLATE, what Go's flate reads
        return c.compress(body) + c.flush()
    return body


def request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection; http.client adds no Content-Type of its own (urllib would)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        verb = method or ("POST" if data is not None else "GET")
        conn.request(verb, target, body=data, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def push(
    url: str,
    streams: list[tuple[dict[str, str], list[list[Any]]]] | None = None,
    *,
    raw: bytes | None = None,
    encoding: str = "",
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    body = raw if raw is not None else push_body(streams or [])
    h = dict(headers or {})
    if content_type is not None:
        h["Content-Type"] = content_type
    if encoding:
        h["Content-Encoding"] = encoding
    return request(url, data=encode(body, encoding), headers=h, method="POST")


def get(base_url: str, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
        ) -> Reply:
    qs = ("?" + urllib.parse.urlencode(params)) if params else ""
    return request(base_url + path + qs, headers=headers)


def query_range(base_url: str, query: str, headers: dict[str, str] | None = None, **params: str) -> Reply:
    return get(base_url, "/loki/api/v1/query_range", {"query": query, **params}, headers)
