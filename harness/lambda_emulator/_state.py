"""The API-side state of one execution environment and the semantics of every call
the runtime and the extensions make (Runtime API, Extensions API, Telemetry API).

All of it is guarded by ``self.cond``: HTTP handler threads block on it in ``next``
calls while the lifecycle (``_environment.Environment``) drives phases from the
caller's thread.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _records
from ._subscription import SubscriptionError
from ._subscription import parse as parse_subscription
from ._telemetry import TelemetryHub

Reply = tuple[int, dict[str, str], bytes]


def _json_reply(status: int, doc: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(doc).encode()


def _error_reply(status: int, error_type: str, message: str) -> Reply:
    return _json_reply(status, {"errorType": error_type, "errorMessage": message})


@dataclass
class Extension:
    id: str
    name: str
    events: tuple[str, ...]
    internal: bool
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    waiting: bool = False
    next_calls: int = 0
    last_next_at: float = 0.0
    error_type: str | None = None


@dataclass
class Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    arn: str
    trace_id: str
    started_at: float
    started_wall_ms: int = 0
    response: bytes | None = None
    error: dict[str, Any] | None = None
    done_at: float | None = None
    tenant_id: str | None = None


class SandboxState:
    """Phases: init → ready ⇄ invoke → shutdown → dead."""

    def __init__(
        self,
        *,
        function_name: str,
        handler: str,
        external_names: set[str],
        hub: TelemetryHub,
        on_event: Callable[[str, str], None],
        managed_instances: bool = False,
    ) -> None:
        self.managed_instances = managed_instances
        self.function_name = function_name
        self.handler = handler
        self.external_names = external_names
        self.hub = hub
        self._on_event = on_event  # lifecycle trace for tests: (what, who)
        self.cond = threading.Condition()
        self.phase = "init"
        self.extensions: dict[str, Extension] = {}
        #: Runtime workers waiting in next (one, except with Managed Instances' concurrency).
        self.runtime_waiters = 0
        self.runtime_next_calls = 0
        self.runtime_queue: deque[Invocation] = deque()
        #: Invocations handed to the runtime and not answered yet, by request id.
        self.inflight: dict[str, Invocation] = {}
        self.init_error: tuple[str, str] | None = None
        self.exits: list[tuple[str, int]] = []
        self.crashes: list[tuple[str, int]] = []

    @property
    def runtime_waiting(self) -> bool:
        return self.runtime_waiters > 0

    # ------------------------------------------------------------------ Extensions API
    def register(self, name: str | None, body: bytes) -> Reply:
        if not name:
            return _error_reply(403, "Extension.MissingHeader", "Lambda-Extension-Name header is required")
        try:
            doc = json.loads(body or b"{}")
            events = doc.get("events", []) if isinstance(doc, dict) else None
        except ValueError:
            events = None
        if not isinstance(events, list) or any(e not in ("INVOKE", "SHUTDOWN") for e in events):
            return _error_reply(
                403, "Extension.InvalidEventType", f"events must be INVOKE and/or SHUTDOWN: {body!r}"
            )
        internal = name not in self.external_names
        if self.managed_instances and ((internal and events) or "INVOKE" in events):
            # Managed Instances run many invokes at once and never freeze: an external
            # extension may only ask for SHUTDOWN, an internal one for nothing.
            what = "an internal extension may register for no events" if internal else "INVOKE"
            return _error_reply(
                403,
                "Extension.InvalidEventType",
                f"{what}: not supported on Lambda Managed Instances (only SHUTDOWN)",
            )
        with self.cond:
            if self.phase != "init":
                return _error_reply(403, "Extension.RegistrationClosed", "registration is closed after init")
            if internal and "SHUTDOWN" in events:
                return _error_reply(
                    403,
                    "Extension.InvalidEventType",
                    f"{name!r} is not a file in /opt/extensions: an internal "
                    "extension cannot register for SHUTDOWN",
                )
            if any(e.name == name for e in self.extensions.values()):
                return _error_reply(403, "Extension.AlreadyRegistered", f"{name!r} is already registered")
            ext = Extension(id=str(uuid.uuid4()), name=name, events=tuple(events), internal=internal)
            self.extensions[ext.id] = ext
            self.cond.notify_all()
        self.hub.emit("platform.extension", _records.extension(name, list(events)))
        self._on_event("register", name)
        return _json_reply(
            200,
            {
                "functionName": self.function_name,
                "functionVersion": _records.FUNCTION_VERSION,
                "handler": self.handler,
            },
            {"Lambda-Extension-Identifier": ext.id},
        )

    def _lookup(self, ext_id: str | None) -> Extension | Reply:
        if not ext_id:
            return _error_reply(
                403, "Extension.MissingHeader", "Lambda-Extension-Identifier header is required"
            )
        ext = self.extensions.get(ext_id)
        if ext is None:
            return _error_reply(403, "Extension.UnknownExtensionIdentifier", f"Unknown extension {ext_id}")
        return ext

    def extension_next(self, ext_id: str | None) -> Reply | None:
        """Blocks until the extension's next event; None when the environment ends first."""
        with self.cond:
            ext = self._lookup(ext_id)
            if not isinstance(ext, Extension):
                return ext
            ext.waiting = True
            ext.next_calls += 1
            ext.last_next_at = time.monotonic()
            self.cond.notify_all()
            self._on_event("next", ext.name)
            while not ext.queue and self.phase != "dead":
                self.cond.wait()
            ext.waiting = False
            if not ext.queue:
                return None
            evt = ext.queue.popleft()
        return _json_reply(200, evt, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

    def extension_error(self, ext_id: str | None, kind: str, error_type: str | None) -> Reply:
        with self.cond:
            ext = self._lookup(ext_id)
            if not isinstance(ext, Extension):
                return ext
            ext.error_type = error_type or "Extension.Unknown"
            if kind == "init" and self.phase == "init":
                self.init_error = (ext.error_type, f"extension {ext.name} reported an init error")
            self.cond.notify_all()
        self._on_event(f"{kind}_error", ext.name)
        return _json_reply(202, {"status": "OK"})

    # ------------------------------------------------------------------ Telemetry API
    def subscribe(self, ext_id: str | None, body: bytes) -> Reply:
        with self.cond:
            ext = self._lookup(ext_id)
            if not isinstance(ext, Extension):
                return ext
            if self.phase != "init":
                return _error_reply(
                    403, "Telemetry.SubscriptionClosed", "Telemetry API subscription is closed"
                )
        try:
            sub = parse_subscription(body, managed_instances=self.managed_instances)
        except SubscriptionError as exc:
            return _error_reply(400, "ValidationError", str(exc))
        self.hub.subscribe(ext.name, sub)
        self.hub.emit(
            "platform.telemetrySubscription", _records.telemetry_subscription(ext.name, list(sub.types))
        )
        self._on_event("subscribe", ext.name)
        return 200, {"Content-Type": "application/json"}, b'"OK"'

    # ------------------------------------------------------------------ Runtime API
    def runtime_next(self) -> Reply | None:
        with self.cond:
            self.runtime_waiters += 1
            self.runtime_next_calls += 1
            self.cond.notify_all()
            self._on_event("next", "runtime")
            while not self.runtime_queue and self.phase != "dead":
                self.cond.wait()
            self.runtime_waiters -= 1
            if not self.runtime_queue:
                return None
            inv = self.runtime_queue.popleft()
            self.inflight[inv.request_id] = inv
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
            "Lambda-Runtime-Trace-Id": inv.trace_id,
        }
        if inv.tenant_id is not None:
            headers["Lambda-Runtime-Aws-Tenant-Id"] = inv.tenant_id
        return 200, headers, inv.body

    def runtime_result(self, request_id: str, body: bytes, error_type: str | None, is_error: bool) -> Reply:
        with self.cond:
            inv = self.inflight.pop(request_id, None)
            if inv is None or inv.done_at is not None:
                return _error_reply(400, "InvalidRequestID", f"unknown or finished request {request_id}")
            if is_error:
                try:
                    err = json.loads(body or b"{}")
                except ValueError:
                    err = {"errorMessage": body.decode("utf-8", "replace")}
                if not isinstance(err, dict):
                    err = {"errorMessage": err}
                err.setdefault("errorType", error_type or "Unhandled")
                inv.error = err
            else:
                inv.response = body
            inv.done_at = time.monotonic()
            self.cond.notify_all()
        self._on_event("error" if is_error else "response", "runtime")
        return _json_reply(202, {"status": "OK"})

    def runtime_init_error(self, body: bytes, error_type: str | None) -> Reply:
        with self.cond:
            if self.phase == "init":
                self.init_error = (error_type or "Runtime.Unknown", body.decode("utf-8", "replace"))
                self.cond.notify_all()
        self._on_event("init_error", "runtime")
        return _json_reply(202, {"status": "OK"})
