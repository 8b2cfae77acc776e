"""Subscribe to the Lambda Telemetry API."""

from __future__ import annotations

from . import http11
from .extensions_api import ID_HEADER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

API_VERSION = "2022-07-01"
#: The only schema Lambda Managed Instances accept; backward compatible on classic functions
#: (platform events gain fields, e.g. tenantId, that records reads when present).
SCHEMA_VERSION = "2025-01-29"
#: The sandbox's own name for itself; Lambda resolves it, RIE posts to 127.0.0.1.
LISTENER_HOST = "sandbox.localdomain"
CALL_TIMEOUT_S = 5.0


class TelemetryAPIError(OSError):
    """The subscription was refused."""


def subscribe_body(
    types: Iterable[str], port: int, *, max_items: int, max_bytes: int, timeout_ms: int
) -> bytes:
    """The subscription request, built without ``json`` (every value here is a safe token)."""
    type_list = ", ".join(f'"{t}"' for t in types)
    return (
        f'{{"schemaVersion": "{SCHEMA_VERSION}", "types": [{type_list}], '
        f'"buffering": {{"maxItems": {int(max_items)}, "maxBytes": {int(max_bytes)}, '
        f'"timeoutMs": {int(timeout_ms)}}}, '
        f'"destination": {{"protocol": "HTTP", "URI": "http://{LISTENER_HOST}:{int(port)}"}}}}'
    ).encode()


def subscribe(runtime_api: str, extension_id: str, body: bytes) -> bool:
    """True when subscribed; False on 202 (a local emulator without telemetry support)."""
    resp = http11.request(
        http11.split_hostport(runtime_api, 80),
        "PUT",
        f"/{API_VERSION}/telemetry",
        headers={ID_HEADER: extension_id, "Content-Type": "application/json"},
        body=body,
        timeout=CALL_TIMEOUT_S,
    )
    if resp.status == 200:
        return True
    if resp.status == 202:
        return False
    raise TelemetryAPIError(f"telemetry subscribe answered {resp.status}: {resp.body[:300]!r}")
