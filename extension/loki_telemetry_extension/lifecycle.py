"""The extension's life, in the order of the Lambda docs:

register → start the listener → subscribe to the Telemetry API → loop on ``next``
→ at SHUTDOWN drain before the deadline.

Anything that goes wrong after register turns the extension into a no-op that keeps
calling ``next``: exiting before SHUTDOWN is ``Extension.Crash`` and would reset the
function's environment.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from . import config as config_mod
from .diag import warn
from .extensions_api import ExtensionsAPI

DEFAULT_NAME = "loki-telemetry-extension"
#: Lambda SIGKILLs at the shutdown deadline; stop pushing this long before it.
SHUTDOWN_MARGIN_S = 0.2
#: Stop flushing this long before an invoke's deadline (the function's timeout).
INVOKE_MARGIN_S = 0.05
#: At SHUTDOWN the Telemetry API may still hold the last lines for up to its buffering
#: timeoutMs; wait that long plus this slack for a quiet spell before the final push.
SHUTDOWN_QUIET_SLACK_S = 0.05
#: ``next`` failing this many times in a row means the Runtime API is gone.
MAX_NEXT_FAILURES = 3


def _monotonic_deadline(deadline_ms: Any, margin_s: float, fallback_s: float) -> float:
    """Event ``deadlineMs`` (Unix epoch ms) → a monotonic deadline ``margin_s`` earlier."""
    now_m = time.monotonic()
    if isinstance(deadline_ms, (int, float)) and not isinstance(deadline_ms, bool):
        return now_m + (deadline_ms / 1000.0 - time.time()) - margin_s
    return now_m + fallback_s - margin_s


class Shipper:
    """Listener + subscription + dispatcher: the part that only exists when configured."""

    def __init__(
        self, cfg: config_mod.Config, runtime_api: str, extension_id: str, env: dict[str, str]
    ) -> None:
        from . import telemetry_api
        from .dispatcher import Dispatcher, stream_labels
        from .listener import Listener
        from .loki_client import LokiClient
        from .records import RecordConverter

        assert cfg.url is not None
        self.cfg = cfg
        headers = self._auth_headers(cfg, env)
        if cfg.tenant_id:
            headers["X-Scope-OrgID"] = cfg.tenant_id
        client = LokiClient(cfg.url, headers=headers)
        converter = RecordConverter(
            ship_platform="platform" in cfg.telemetry_types,
            ship_extension="extension" in cfg.telemetry_types,
            max_line_bytes=cfg.max_line_bytes,
        )
        self.dispatcher = Dispatcher(
            converter=converter,
            send=lambda body, timeout: client.send(body, timeout=timeout),
            stream_labels=stream_labels(cfg.function_name, cfg.labels),
            batch_size=cfg.batch_size,
            flush_interval_s=cfg.flush_interval_s,
            max_buffer_bytes=cfg.max_buffer_bytes,
            url_for_messages=_redact(cfg.url),
        )
        self.listener = Listener(self.dispatcher.accept)
        self.listener.start()
        # Always subscribe to platform events too: runtimeDone tells us an invoke's logs
        # are all here, and logsDropped is how Lambda reports loss; they are shipped only
        # when the user asked for "platform".
        types = ["platform", *(t for t in cfg.telemetry_types if t != "platform")]
        body = telemetry_api.subscribe_body(
            types, self.listener.port, max_items=cfg.buffer_max_items, max_bytes=cfg.buffer_max_bytes,
            timeout_ms=cfg.buffer_timeout_ms,
        )
        self.subscribed = telemetry_api.subscribe(runtime_api, extension_id, body)
        if not self.subscribed:
            self.listener.close()
            warn("the Telemetry API is not supported here (subscribe answered 202); not shipping logs")
            return
        self.dispatcher.start()

    @staticmethod
    def _auth_headers(cfg: config_mod.Config, env: dict[str, str]) -> dict[str, str]:
        if not (cfg.basic_auth_secret_arn or cfg.bearer_token_secret_arn):
            return {}
        from . import secrets

        if cfg.basic_auth_secret_arn:
            value = secrets.fetch_secret_string(env, cfg.basic_auth_secret_arn)
            return {"Authorization": secrets.basic_auth_header(value)}
        assert cfg.bearer_token_secret_arn
        value = secrets.fetch_secret_string(env, cfg.bearer_token_secret_arn)
        return {"Authorization": secrets.bearer_header(value)}

    def on_invoke(self, event: dict[str, Any]) -> None:
        if not self.subscribed:
            return
        d = self.dispatcher
        deadline = _monotonic_deadline(event.get("deadlineMs"), INVOKE_MARGIN_S, 3.0)
        d.set_deadline(deadline)  # also wakes the sender: leftovers from before the freeze go now
        if self.cfg.ship_before_freeze:
            rid = event.get("requestId")
            if isinstance(rid, str):
                d.wait_runtime_done(rid, deadline)
            d.flush(deadline)

    def on_shutdown(self, event: dict[str, Any]) -> None:
        if not self.subscribed:
            return
        d = self.dispatcher
        deadline = _monotonic_deadline(event.get("deadlineMs"), SHUTDOWN_MARGIN_S, 2.0)
        d.set_deadline(deadline)
        d.stop_sender()
        quiet = self.cfg.buffer_timeout_ms / 1000.0 + SHUTDOWN_QUIET_SLACK_S
        while True:
            if not d.flush(deadline):
                break
            left = deadline - time.monotonic()
            # The last lines may still be in the Telemetry API's buffer: wait for a quiet spell.
            if left <= 0 or not d.wait_for_data(min(quiet, left)):
                break
        lost = d.give_up_remaining()
        if lost:
            warn(f"SHUTDOWN deadline reached with {lost} entries not shipped")
        drops = d.stats.drops()
        if any(drops.values()):
            if time.monotonic() < deadline:
                d.flush(deadline)  # ships the drop-report line if anything is left to report
            warn("entries lost in this environment: " + ", ".join(f"{k}={v}" for k, v in drops.items()))
        self.listener.close()


def _redact(url: str) -> str:
    """The URL without userinfo, for messages."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    return f"{scheme}{sep}{authority.rpartition('@')[2]}{slash}{path}"


def run(env: dict[str, str], name: str = DEFAULT_NAME) -> int:
    runtime_api = env.get("AWS_LAMBDA_RUNTIME_API", "")
    if not runtime_api:
        warn("AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda; exiting")
        return 1
    api = ExtensionsAPI(runtime_api)
    api.register(name)  # if this fails there is no Lambda to serve: let the caller exit
    cfg = config_mod.load(env)
    for problem in cfg.problems:
        warn(problem)

    shipper: Shipper | None = None
    if cfg.url is not None:
        try:
            shipper = Shipper(cfg, runtime_api, api.extension_id, env)
        except Exception as e:
            warn(f"not shipping logs: {type(e).__name__}: {e}")
            shipper = None

    failures = 0
    while True:
        try:
            event = api.next_event()
            failures = 0
        except Exception as e:
            failures += 1
            if failures >= MAX_NEXT_FAILURES:
                warn(f"the Extensions API keeps failing ({type(e).__name__}: {e}); exiting")
                return 1
            continue
        kind = str(event.get("eventType", "")).upper()
        try:
            if kind == "INVOKE" and shipper is not None:
                shipper.on_invoke(event)
            elif kind == "SHUTDOWN":
                if shipper is not None:
                    shipper.on_shutdown(event)
                return 0
        except Exception as e:  # never let a bug stop the next call
            warn(f"error handling {kind}: {type(e).__name__}: {e}")
            if kind == "SHUTDOWN":
                return 0


def main() -> None:
    name = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else DEFAULT_NAME
    try:
        code = run(dict(os.environ), name)
    except Exception as e:
        warn(f"fatal: {type(e).__name__}: {e}")
        code = 1
    sys.stdout.flush()
    os._exit(code)  # daemon threads may be mid-socket: do not wait for them
