"""The extension's life, in the order of the Lambda docs:

register → start the listener → subscribe to the Telemetry API → loop on ``next``
→ at SHUTDOWN drain before the deadline.

When an invoke's lines are pushed (``Config.flush_mode``, see envvars.LOKI_FLUSH):
- end_of_invoke: at INVOKE wait for that request's platform.runtimeDone, push everything,
  then call ``next`` (the environment freezes only after that);
- batch: never before ``next``; the background sender pushes on size and age while thawed;
- adaptive: the cold-start invoke and every SPARSE invoke as end_of_invoke; a DENSE invoke
  (the last DENSE_STREAK idle gaps all ≤ LOKI_DENSE_GAP_MS) wakes the sender, which pushes
  the previous invokes' lines while this one runs, and calls ``next`` at once;
- every mode: above the high-water mark, push before ``next`` until below it (the mark is
  lowered to keep room for the largest recent invoke: invoke_volume);
- Lambda Managed Instances (no INVOKE events, never frozen): batch, with a rolling deadline.

Anything that goes wrong after register turns the extension into a no-op that keeps
calling ``next``: exiting before SHUTDOWN is ``Extension.Crash`` and would reset the
function's environment.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from . import config as config_mod
from . import drop_report
from . import platform_events as pe
from .diag import warn
from .envvars import DENSE_STREAK
from .extensions_api import ExtensionsAPI

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .dispatcher import Dispatcher

DEFAULT_NAME = "loki-telemetry-extension"
#: Lambda SIGKILLs at the shutdown deadline; stop pushing this long before it.
SHUTDOWN_MARGIN_S = 0.2
#: Stop flushing this long before an invoke's deadline (the function's timeout).
INVOKE_MARGIN_S = 0.05
#: At SHUTDOWN the Telemetry API may still hold the last lines for up to its buffering
#: timeoutMs; wait that long plus this slack for a quiet spell before the final push.
SHUTDOWN_QUIET_SLACK_S = 0.05
#: At SHUTDOWN, stop waiting for the last invoke's runtimeDone this long before the deadline,
#: keeping time to push what its delivery brought.
SHUTDOWN_DRAIN_RESERVE_S = 0.3
#: adaptive (sparse invokes) and the high-water mark: longest push before ``next``. A healthy Loki
#: takes milliseconds for a 1 MiB request; a Loki that is down would otherwise cost every invoke
#: its whole timeout.
PRE_NEXT_PUSH_BUDGET_S = 2.0
#: Managed Instances: time allowed to each push attempt cycle (a rolling deadline; nothing freezes).
MANAGED_PUSH_BUDGET_S = 30.0
#: ``next`` failing this many times in a row means the Runtime API is gone.
MAX_NEXT_FAILURES = 3


def _monotonic_deadline(deadline_ms: Any, margin_s: float, fallback_s: float) -> float:
    """Event ``deadlineMs`` (Unix epoch ms) → a monotonic deadline ``margin_s`` earlier."""
    now_m = time.monotonic()
    if isinstance(deadline_ms, (int, float)) and not isinstance(deadline_ms, bool):
        return now_m + (deadline_ms / 1000.0 - time.time()) - margin_s
    return now_m + fallback_s - margin_s


class Shipper:
    """Listener + subscription + dispatcher: the part that only exists when configured.

    Init speed: everything up to the first ``next`` runs on ``_socket``/``_thread`` only.
    The heavier part (threading, json, zlib, the Loki client, fetching credentials) is
    built by a warm-up thread while the main thread already waits in ``next``; deliveries
    that arrive before it is ready are kept and replayed in order.
    """

    def __init__(
        self, cfg: config_mod.Config, runtime_api: str, extension_id: str, env: dict[str, str]
    ) -> None:
        from . import telemetry_api
        from .listener import Listener

        assert cfg.url is not None
        self.cfg = cfg
        self._env = env
        self._lock = _thread.allocate_lock()
        self._pending: list[bytes] = []
        self._dispatcher: Dispatcher | None = None
        self._failed = False
        self._started = False
        self._last_request_id: str | None = None
        #: adaptive: the idle gaps (ms) before the last DENSE_STREAK invokes, newest last.
        self._gaps: list[float] = []
        self._seen_invoke = False
        #: Wall time (ns) the previous INVOKE's handling ended, i.e. ``next`` was called.
        self._handled_ns = 0
        self._ready = _thread.allocate_lock()
        self._ready.acquire()  # released by the warm-up thread when it is done, either way
        self.listener = Listener(self._sink)
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
            self._ready.release()

    def start_warm_up(self) -> None:
        """Called once the first ``next`` request is sent, so the warm-up's imports never
        compete with the init path for the GIL."""
        if self.subscribed and not self._started:
            self._started = True
            _thread.start_new_thread(self._warm_up, ())

    def _sink(self, body: bytes) -> None:
        with self._lock:
            d = self._dispatcher
            if d is None:
                if not self._failed:
                    self._pending.append(body)
                return
        d.accept(body)

    def _warm_up(self) -> None:
        try:
            d = self._build_dispatcher()
            d.start()
            with self._lock:
                for body in self._pending:
                    d.accept(body)
                self._pending.clear()
                self._dispatcher = d
        except Exception as e:
            with self._lock:
                self._failed = True
                self._pending.clear()
            warn(f"not shipping logs: {type(e).__name__}: {e}")
        finally:
            self._ready.release()

    def _build_dispatcher(self) -> Dispatcher:
        from .dispatcher import Dispatcher, stream_labels
        from .loki_client import LokiClient
        from .records import RecordConverter

        cfg = self.cfg
        assert cfg.url is not None
        headers = self._auth_headers(cfg, self._env)
        if cfg.tenant_id:
            headers["X-Scope-OrgID"] = cfg.tenant_id
        client = LokiClient(cfg.url, headers=headers)
        converter = RecordConverter(
            ship_platform="platform" in cfg.telemetry_types,
            ship_extension="extension" in cfg.telemetry_types,
            max_line_bytes=cfg.max_line_bytes,
            attribute_by_start=not cfg.managed_instances,
        )
        return Dispatcher(
            converter=converter,
            send=lambda body, timeout: client.send(body, timeout=timeout),
            stream_labels=stream_labels(cfg.function_name, cfg.labels),
            batch_size=cfg.batch_size,
            flush_interval_s=cfg.flush_interval_s,
            max_buffer_bytes=cfg.max_buffer_bytes,
            url_for_messages=_redact(cfg.url),
            # Never frozen and no INVOKE to bring a deadline: every push gets the time it needs.
            rolling_deadline_s=MANAGED_PUSH_BUDGET_S if cfg.managed_instances else None,
        )

    def _dispatcher_by(self, deadline: float) -> Dispatcher | None:
        """The dispatcher once warm-up is done (waiting for it at most until ``deadline``)."""
        d = self._dispatcher
        if d is not None or self._failed:
            return d
        left = deadline - time.monotonic()
        if left > 0 and self._ready.acquire(timeout=left):
            self._ready.release()
        return self._dispatcher

    @staticmethod
    def _auth_headers(cfg: config_mod.Config, env: dict[str, str]) -> dict[str, str]:
        if not (cfg.basic_auth_secret_arn or cfg.bearer_token_secret_arn):
            return {}
        from . import envvars, secrets

        basic = cfg.basic_auth_secret_arn
        name = envvars.LOKI_BASIC_AUTH_SECRET_ARN if basic else envvars.LOKI_BEARER_TOKEN_SECRET_ARN
        arn = basic or cfg.bearer_token_secret_arn
        assert arn
        try:
            value = secrets.fetch_secret_string(env, arn)
            header = secrets.basic_auth_header(value) if basic else secrets.bearer_header(value)
        except secrets.SecretError as e:
            raise secrets.SecretError(f"{name}: {e}") from None
        return {"Authorization": header}

    def on_invoke(self, event: dict[str, Any]) -> None:
        if not self.subscribed:
            return
        arrived_ns = time.time_ns()
        deadline = _monotonic_deadline(event.get("deadlineMs"), INVOKE_MARGIN_S, 3.0)
        rid_obj = event.get("requestId")
        rid = rid_obj if isinstance(rid_obj, str) else None
        previous, self._last_request_id = self._last_request_id, rid
        first = not self._seen_invoke
        self._seen_invoke = True
        d = self._dispatcher_by(deadline)  # the cold-start invoke waits for the warm-up here
        if d is None:
            return
        d.set_deadline(deadline)  # also wakes a parked sender: leftovers from before the freeze go now
        mode = self.cfg.flush_mode
        if mode == "adaptive":
            dense = not first and self._dense(d, previous, arrived_ns)
            before_freeze = not dense
        else:
            before_freeze = mode == "end_of_invoke"
        try:
            if before_freeze:
                if rid is not None:
                    d.wait_runtime_done(rid, deadline)
                # end_of_invoke is the user's explicit choice: up to the deadline. adaptive chose
                # for them: a Loki that is down must not bill every invoke up to its timeout.
                d.flush(deadline if mode == "end_of_invoke" else _budget(deadline))
                return
            if mode == "adaptive":
                d.wake_sender()  # the previous invokes' lines go now, in this invoke's thawed time
            previous_done = previous is None or d.runtime_done_ns(previous) is not None
            mark = d.high_water_mark(self.cfg.high_water_percent, previous_done)
            # Held, not queued: a push in flight still counts against the buffer's bound. With
            # Loki failing the buffer stays full whatever we do: pushing before next would only
            # add the retries to every invoke; the sender keeps trying in the thawed time.
            held = d.held_bytes()
            if held and held >= mark and not d.loki_failing:
                d.flush(_budget(deadline), below_bytes=mark, stop_on_failure=True)
        finally:
            self._handled_ns = time.time_ns()

    def _dense(self, d: Dispatcher, previous: str | None, arrived_ns: int) -> bool:
        """Record this invoke's idle gap and tell whether the last DENSE_STREAK gaps were all short.

        The gap is the time the environment sat idle: from the previous invoke's runtimeDone, or
        from our own ``next`` if that came later (our push before the freeze is not idle time: a
        slow Loki would otherwise make back-to-back invokes look sparse forever), to this INVOKE.
        0 if the previous runtimeDone has not arrived yet (we called ``next`` without it)."""
        done_ns = d.runtime_done_ns(previous) if previous is not None else None
        idle_from = None if done_ns is None else max(done_ns, self._handled_ns)
        gap_ms = 0.0 if idle_from is None else max(0.0, (arrived_ns - idle_from) / 1e6)
        self._gaps.append(gap_ms)
        del self._gaps[:-DENSE_STREAK]
        limit = self.cfg.dense_gap_ms
        return limit > 0 and len(self._gaps) == DENSE_STREAK and all(g <= limit for g in self._gaps)

    def on_shutdown(self, event: dict[str, Any]) -> None:
        if not self.subscribed:
            return
        deadline = _monotonic_deadline(event.get("deadlineMs"), SHUTDOWN_MARGIN_S, 2.0)
        d = self._dispatcher_by(deadline)
        if d is None:
            self.listener.close()
            return
        d.set_deadline(deadline)
        d.stop_sender()
        # The last invoke's lines may still sit in the Telemetry API's buffer (the environment
        # was frozen right after it): push what is here, then wait (bounded) for that
        # invoke's runtimeDone, which Lambda delivers after them, then a quiet spell.
        d.flush(deadline)
        if self._last_request_id is not None:
            d.wait_runtime_done(self._last_request_id, deadline - SHUTDOWN_DRAIN_RESERVE_S)
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
            warn(drop_report.at_shutdown(drops))
        self.listener.close()


def _budget(deadline: float) -> float:
    """The deadline of a push before ``next`` that the user did not ask for explicitly."""
    return min(deadline, time.monotonic() + PRE_NEXT_PUSH_BUDGET_S)


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
    cfg = config_mod.load(env)
    api = ExtensionsAPI(runtime_api)
    # Managed Instances refuse INVOKE (403 Extension.InvalidEventType): SHUTDOWN only there.
    # If register fails there is no Lambda to serve: let the caller exit.
    api.register(name, shutdown_only=cfg.managed_instances)
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
    warm_up = shipper.start_warm_up if shipper is not None else None
    while True:
        try:
            event = api.next_event(after_send=warm_up)
            warm_up = None
            failures = 0
        except Exception as e:
            failures += 1
            if failures >= MAX_NEXT_FAILURES:
                warn(f"the Extensions API keeps failing ({type(e).__name__}: {e}); exiting")
                return 1
            continue
        kind = str(event.get("eventType", "")).upper()
        try:
            if kind == pe.INVOKE and shipper is not None:
                shipper.on_invoke(event)
            elif kind == pe.SHUTDOWN:
                if shipper is not None:
                    shipper.on_shutdown(event)
                return 0
        except Exception as e:  # never let a bug stop the next call
            warn(f"error handling {kind}: {type(e).__name__}: {e}")
            if kind == pe.SHUTDOWN:
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
