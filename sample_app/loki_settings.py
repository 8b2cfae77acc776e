"""Where the sample app ships its logs: read from CDK context, then the environment.

Precedence per setting: ``-c <context key>=...`` > environment variable > default.
Both the CDK app (``sample_app/app.py``) and the integration test read their settings here,
so ``cdk synth -c loki_url=...`` and ``LOKI_URL=... cdk synth`` behave the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from loki_telemetry_construct import envvars, with_loki_logging

#: The local receiver's (and a stock Loki's) push URL on this machine: `make demo`'s default sink.
DEFAULT_LOKI_URL = f"http://127.0.0.1:{envvars.LOKI_IP_PORT}{envvars.LOKI_PUSH_PATH}"
#: Static label on every stream of the sample (Loki 3 derives ``service_name`` from ``app``).
DEFAULT_LABELS: Mapping[str, str] = {"app": "loki-sample"}

# Context keys (cdk synth -c KEY=VALUE) and the environment variables they fall back to.
CTX_LOKI_URL = "loki_url"
CTX_LOKI_IP = "loki_ip"
CTX_BATCH_SIZE = "loki_batch_size"
CTX_LABELS = "loki_labels"
CTX_TENANT_ID = "loki_tenant_id"
CTX_SHIP_BEFORE_FREEZE = "loki_ship_before_freeze"
#: Loki's query endpoint (``.../loki/api/v1/query_range``); the integ test queries it when set.
CTX_QUERY_URL = "loki_query_url"
ENV_QUERY_URL = "LOKI_QUERY_URL"

#: Every environment variable the sample reads at synth time (the snapshot check clears them).
SYNTH_ENV_VARS = (
    envvars.LOKI_URL,
    envvars.LOKI_IP,
    envvars.DISPATCH_MIN_BATCH_SIZE,
    envvars.LOKI_LABELS,
    envvars.LOKI_TENANT_ID,
    envvars.LOKI_SHIP_BEFORE_FREEZE,
    ENV_QUERY_URL,
)


@dataclass(frozen=True)
class LokiSettings:
    """The sample's Loki options, resolved from context and environment."""

    loki_url: str | None = DEFAULT_LOKI_URL
    loki_ip: str | None = None
    batch_size: int | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    tenant_id: str | None = None
    ship_before_freeze: bool | None = None
    query_url: str | None = None

    @classmethod
    def resolve(cls, scope: Construct, environ: Mapping[str, str] | None = None) -> LokiSettings:
        env = os.environ if environ is None else environ

        def get(ctx_key: str, env_key: str) -> str | None:
            value: Any = scope.node.try_get_context(ctx_key)
            if value is None or value == "":
                value = env.get(env_key) or None
            return None if value is None else str(value)

        url = get(CTX_LOKI_URL, envvars.LOKI_URL)
        ip = get(CTX_LOKI_IP, envvars.LOKI_IP)
        if url is None and ip is None:
            url = DEFAULT_LOKI_URL
        batch = get(CTX_BATCH_SIZE, envvars.DISPATCH_MIN_BATCH_SIZE)
        labels_json = get(CTX_LABELS, envvars.LOKI_LABELS)
        ship = get(CTX_SHIP_BEFORE_FREEZE, envvars.LOKI_SHIP_BEFORE_FREEZE)
        return cls(
            loki_url=url,
            loki_ip=ip,
            batch_size=_parse_int(CTX_BATCH_SIZE, batch) if batch is not None else None,
            labels=_parse_labels(labels_json) if labels_json is not None else dict(DEFAULT_LABELS),
            tenant_id=get(CTX_TENANT_ID, envvars.LOKI_TENANT_ID),
            ship_before_freeze=_parse_bool(CTX_SHIP_BEFORE_FREEZE, ship) if ship is not None else None,
            query_url=get(CTX_QUERY_URL, ENV_QUERY_URL),
        )

    def apply(self, scope: Construct, *, ship_before_freeze: bool | None = None) -> None:
        """The library's one-liner, with only the options that were given.

        ``ship_before_freeze`` overrides the resolved setting (the integ test needs it on).
        """
        options: dict[str, Any] = {"labels": dict(self.labels)}
        if self.batch_size is not None:
            options["batch_size"] = self.batch_size
        if self.tenant_id is not None:
            options["tenant_id"] = self.tenant_id
        ship = self.ship_before_freeze if ship_before_freeze is None else ship_before_freeze
        if ship is not None:
            options["ship_before_freeze"] = ship
        # Both given is the library's error to report (it names the options and the fix).
        if self.loki_url is not None:
            options["loki_url"] = self.loki_url
        if self.loki_ip is not None:
            options["loki_ip"] = self.loki_ip
        with_loki_logging(scope, **options)


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}: pass e.g. -c {name}=100") from None


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}: pass e.g. -c {name}=true")


def _parse_labels(raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{CTX_LABELS} must be a JSON object of strings, got {raw!r} ({exc.msg}): "
            f"""pass e.g. -c '{CTX_LABELS}={{"env":"dev"}}'"""
        ) from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{CTX_LABELS} must be a JSON object of strings, got {raw!r}")
    return {str(k): v for k, v in value.items()}
