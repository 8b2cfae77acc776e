"""Validation of a Telemetry API subscribe request, with AWS's documented limits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
TYPES = ("platform", "function", "extension")
#: (default, min, max) per the Telemetry API reference.
MAX_ITEMS = (1_000, 1_000, 10_000)
MAX_BYTES = (262_144, 262_144, 1_048_576)
TIMEOUT_MS = (1_000, 25, 30_000)
#: The Runtime API's own port inside Lambda; a listener may not use it.
RESERVED_PORT = 9001


class SubscriptionError(ValueError):
    """The request is invalid: answered 400 ValidationError."""


@dataclass(frozen=True)
class Subscription:
    schema_version: str
    types: tuple[str, ...]
    max_items: int
    max_bytes: int
    timeout_ms: int
    uri: str
    port: int
    path: str


def _bounded(buffering: dict[str, object], key: str, limits: tuple[int, int, int]) -> int:
    default, low, high = limits
    value = buffering.get(key, default)
    # bool is an int in Python but not a JSON number Lambda would accept.
    if not isinstance(value, int) or isinstance(value, bool):
        raise SubscriptionError(f"buffering.{key} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise SubscriptionError(f"buffering.{key} must be between {low} and {high}, got {value}")
    return value


#: The only schema Lambda Managed Instances accept (it is backward compatible with classic).
MANAGED_INSTANCES_SCHEMA = "2025-01-29"


def parse(body: bytes, *, managed_instances: bool = False) -> Subscription:
    """Parse and validate; raise SubscriptionError with a message naming the field."""
    try:
        doc = json.loads(body or b"null")
    except ValueError as exc:
        raise SubscriptionError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SubscriptionError("request body must be a JSON object")

    schema = doc.get("schemaVersion")
    if managed_instances and schema != MANAGED_INSTANCES_SCHEMA:
        raise SubscriptionError(
            f"schemaVersion must be {MANAGED_INSTANCES_SCHEMA} on Lambda Managed Instances, got {schema!r}"
        )
    if schema not in SCHEMA_VERSIONS:
        raise SubscriptionError(f"schemaVersion must be one of {', '.join(SCHEMA_VERSIONS)}, got {schema!r}")

    types = doc.get("types")
    if not isinstance(types, list) or not types:
        raise SubscriptionError("types must be a non-empty array")
    for t in types:
        if t not in TYPES:
            raise SubscriptionError(f"types may contain only {', '.join(TYPES)}, got {t!r}")

    buffering = doc.get("buffering", {})
    if not isinstance(buffering, dict):
        raise SubscriptionError("buffering must be an object")
    max_items = _bounded(buffering, "maxItems", MAX_ITEMS)
    max_bytes = _bounded(buffering, "maxBytes", MAX_BYTES)
    timeout_ms = _bounded(buffering, "timeoutMs", TIMEOUT_MS)

    dest = doc.get("destination")
    if not isinstance(dest, dict):
        raise SubscriptionError("destination must be an object with protocol and URI")
    if dest.get("protocol") != "HTTP":
        raise SubscriptionError(f"destination.protocol must be HTTP, got {dest.get('protocol')!r}")
    uri = dest.get("URI")
    if not isinstance(uri, str):
        raise SubscriptionError("destination.URI must be a string")
    parts = urlsplit(uri)
    if parts.scheme != "http" or not parts.hostname:
        raise SubscriptionError(f"destination.URI must be an http:// URI, got {uri!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise SubscriptionError(f"destination.URI has an invalid port: {uri!r}") from None
    if port == RESERVED_PORT:
        raise SubscriptionError(f"destination.URI may not use the reserved port {RESERVED_PORT}")

    return Subscription(
        schema_version=schema,
        types=tuple(dict.fromkeys(types)),
        max_items=max_items,
        max_bytes=max_bytes,
        timeout_ms=timeout_ms,
        uri=uri,
        port=port,
        path=parts.path or "/",
    )
