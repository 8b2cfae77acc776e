"""The lifecycle of one execution environment: start its processes, init, invoke,
freeze/thaw, reset and shutdown, as Lambda does. The API semantics live in ``_state``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _records
from ._procs import LogSocketServer, ManagedProcess, max_rss_mb
from ._results import InitResult, InvokeResult, LambdaInitError, ShutdownResult
from ._state import Extension, Invocation, SandboxState
from ._telemetry import TelemetryHub

#: Extensions get the function's environment minus these, as in Lambda: the log group and
#: stream, the handler and the runtime API address are the function's, not the extension's.
WITHHELD_FROM_EXTENSIONS = (
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "_X_AMZN_TRACE_ID",
)
#: How long after the runtime's response its last output may still sit in a pipe.
OUTPUT_DRAIN_S = 2.0


@dataclass(frozen=True)
class _Outcome:
    status: str  # success | error | failure | timeout
    error: dict[str, Any] | None = None
    reset: str | None = None

    @property
    def error_type(self) -> str | None:
        return str(self.error["errorType"]) if self.error else None


def _crash_error(error_type: str, crash: tuple[str, int]) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": f"{crash[0]} exited with code {crash[1]}"}


def _timeout_error(request_id: str, timeout_s: float) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"{request_id} Task timed out after {timeout_s:.2f} seconds",
    }


def _inv_timeout(inv: Invocation) -> float:
    return (inv.deadline_ms - inv.started_wall_ms) / 1000


def _decode(body: bytes | None) -> Any:
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Config:
    """Everything an environment needs, resolved by the facade."""

    handler: str
    code_dir: Path
    opt_dir: Path
    function_name: str
    memory_mb: int
    timeout_s: float
    region: str
    account_id: str
    log_format: str
    runtime_argv: tuple[str, ...]
    runtime_env: Mapping[str, str]
    extension_env: Mapping[str, str]
    extension_paths: tuple[Path, ...]
    init_timeout_s: float
    shutdown_timeout_s: float
    runtime_shutdown_s: float
    runtime_version: str
    #: How each extension is started (qemu in front for an aarch64 binary), by name.
    extension_argv: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Run in the child before exec (the no-Python sandbox's chroot), or None.
    extension_preexec: Callable[[], None] | None = None
    #: Lambda Managed Instances: concurrent invokes, SHUTDOWN-only extensions, no freeze.
    managed_instances: bool = False
    #: Where awslambdaric's concurrent workers connect their stdout/stderr (Managed Instances).
    log_socket: Path | None = None


class Environment(SandboxState):
    """One execution environment: its processes and its lifecycle (init → invoke* →
    shutdown). A reset (timeout, crash) ends it; the facade then starts a new one."""

    def __init__(self, config: Config, hub: TelemetryHub, on_event: Callable[[str, str], None]) -> None:
        super().__init__(
            function_name=config.function_name,
            handler=config.handler,
            external_names={p.name for p in config.extension_paths},
            hub=hub,
            on_event=on_event,
            managed_instances=config.managed_instances,
        )
        self.cfg = config
        self.init_type = _records.MANAGED_INSTANCES if config.managed_instances else _records.ON_DEMAND
        self.log_server: LogSocketServer | None = None
        #: The tenant this environment serves (tenant isolation binds one to each).
        self.tenant_id: str | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self.runtime: ManagedProcess | None = None
        self.init_duration_ms: float | None = None
        self._report_init = True
        self.frozen = False
        self.arn = f"arn:aws:lambda:{config.region}:{config.account_id}:function:{config.function_name}"

    # ------------------------------------------------------------------ output sinks
    def _function_line(self, line: str, epoch_s: float) -> None:
        if self.cfg.log_format == "JSON":
            self.hub.emit("function", _records.json_log_record(line, epoch_s), epoch_s)
        else:
            self.hub.emit("function", line, epoch_s)

    def _function_frame(self, msg: str, _frame_type: int, epoch_s: float) -> None:
        # One frame = one logging call, however many lines it spans.
        if self.cfg.log_format == "JSON":
            self.hub.emit("function", _records.json_log_record(msg, epoch_s), epoch_s)
        else:
            self.hub.emit("function", msg, epoch_s)

    def _extension_line(self, line: str, epoch_s: float) -> None:
        if self.cfg.log_format == "JSON":
            self.hub.emit("extension", _records.json_log_record(line, epoch_s), epoch_s)
        else:
            self.hub.emit("extension", line, epoch_s)

    def _process_exited(self, proc: ManagedProcess, rc: int) -> None:
        with self.cond:
            self.exits.append((proc.name, rc))
            if self.phase not in ("shutdown", "dead"):
                # Exiting before SHUTDOWN, even with 0, is Extension.Crash / Runtime.ExitError.
                self.crashes.append((proc.name, rc))
            self.cond.notify_all()
        self._on_event("exit", proc.name)

    # ------------------------------------------------------------------ lifecycle helpers
    def _all_processes(self) -> list[ManagedProcess]:
        procs = list(self.processes.values())
        if self.runtime is not None:
            procs.append(self.runtime)
        return procs

    def _freeze(self) -> None:
        # Lambda freezes its own agent with the microVM, so a POST in flight resumes after
        # the thaw; here the sender keeps running, so let the POST finish first instead of
        # letting it time out against a stopped listener (and be delivered twice).
        self.hub.freeze(self.hub.delivery_timeout_s)
        procs = [p for p in self._all_processes() if p.alive]
        for p in procs:
            p.freeze()
        for p in procs:
            p.wait_stopped(1.0)
        self.frozen = True
        self._on_event("freeze", "sandbox")

    def _thaw(self) -> None:
        for p in self._all_processes():
            p.thaw()
        self.frozen = False
        self.hub.thaw()
        self._on_event("thaw", "sandbox")

    def _wait(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Wait on cond (held by caller) until predicate or the monotonic deadline."""
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return predicate()
            self.cond.wait(left)
        return True

    def _external(self) -> list[Extension]:
        return [e for e in self.extensions.values() if not e.internal]

    def stderr_by_process(self) -> dict[str, list[str]]:
        return {p.name: list(p.stderr_lines) for p in self._all_processes()}

    # ------------------------------------------------------------------ init
    def init(self) -> InitResult:
        cfg = self.cfg
        t0 = time.monotonic()
        deadline = t0 + cfg.init_timeout_s
        self.hub.emit(
            "platform.initStart", _records.init_start(cfg.function_name, cfg.runtime_version, self.init_type)
        )
        if cfg.log_socket is not None:
            self.log_server = LogSocketServer(cfg.log_socket, self._function_line)
        # Extension init: start every external extension and wait for all to register.
        for path in cfg.extension_paths:
            self._on_event("start", path.name)
            try:
                self.processes[path.name] = ManagedProcess(
                    path.name,
                    cfg.extension_argv.get(path.name, (str(path),)),
                    env=cfg.extension_env,
                    cwd="/",
                    on_line=self._extension_line,
                    on_exit=self._process_exited,
                    preexec_fn=cfg.extension_preexec,
                )
            except OSError as exc:
                # e.g. a script without a shebang (ENOEXEC): Lambda fails init the same way.
                with self.cond:
                    self.init_error = ("Extension.LaunchError", f"cannot start {path.name}: {exc}")
                break
        with self.cond:
            ok = self._wait(
                lambda: (
                    self.init_error is not None
                    or bool(self.crashes)
                    or {e.name for e in self._external()} >= self.external_names
                ),
                deadline,
            )
        failure = self._init_failure(ok, "extensions did not all register")
        if failure is None:
            # Runtime init: start the runtime; init ends when it and every extension wait in next.
            self._on_event("start", "runtime")
            try:
                self.runtime = ManagedProcess(
                    "runtime",
                    cfg.runtime_argv,
                    env=cfg.runtime_env,
                    cwd=cfg.code_dir,
                    on_line=self._function_line,
                    on_exit=self._process_exited,
                    telemetry_fd_sink=self._function_frame,
                )
            except OSError as exc:
                # e.g. no executable `bootstrap` in a provided.* function's code.
                with self.cond:
                    self.init_error = ("Runtime.InvalidEntrypoint", f"cannot start the runtime: {exc}")
            with self.cond:
                ok = self._wait(
                    lambda: (
                        self.init_error is not None
                        or bool(self.crashes)
                        or (self.runtime_waiting and all(e.waiting for e in self.extensions.values()))
                    ),
                    deadline,
                )
            failure = self._init_failure(ok, "runtime and extensions were not ready")
        duration_ms = (time.monotonic() - t0) * 1000
        self.init_duration_ms = duration_ms
        self._drain_function_output()
        status = (
            "success" if failure is None else ("timeout" if failure[0] == "Sandbox.Timedout" else "error")
        )
        err_type = failure[0] if failure else None
        self.hub.emit(
            "platform.initRuntimeDone", _records.init_runtime_done(status, err_type, self.init_type)
        )
        self.hub.emit(
            "platform.initReport", _records.init_report(status, duration_ms, err_type, self.init_type)
        )
        if failure is not None:
            stderr = self.stderr_by_process()
            self.kill_all()
            raise LambdaInitError(failure[0], failure[1], stderr)
        with self.cond:
            self.phase = "ready"
        self.hub.end_init()
        if not self.cfg.managed_instances:
            # Managed Instances are never frozen.
            self._freeze()
        assert self.runtime is not None
        return InitResult(
            duration_ms=duration_ms,
            extensions=tuple(e.name for e in self._external()),
            extension_pids={n: p.pid for n, p in self.processes.items()},
            runtime_pid=self.runtime.pid,
        )

    def _drain_function_output(self) -> None:
        deadline = time.monotonic() + OUTPUT_DRAIN_S
        if self.runtime is not None:
            self.runtime.drained(OUTPUT_DRAIN_S)
        if self.log_server is not None:
            self.log_server.drained(deadline - time.monotonic())

    def _init_failure(self, ok: bool, what: str) -> tuple[str, str] | None:
        with self.cond:
            if self.init_error is not None:
                return self.init_error
            if self.crashes:
                name, rc = self.crashes[0]
                kind = "Runtime.ExitError" if name == "runtime" else "Extension.Crash"
                return kind, f"{name} exited with code {rc} during init"
            if not ok:
                return "Sandbox.Timedout", f"init exceeded {self.cfg.init_timeout_s:g} s: {what}"
        return None

    # ------------------------------------------------------------------ invoke
    def invoke(self, payload: bytes, timeout_s: float, tenant_id: str | None = None) -> InvokeResult:
        if self.cfg.managed_instances:
            return self._invoke_managed(payload, timeout_s, tenant_id)
        with self.cond:
            if self.phase != "ready":
                raise RuntimeError(f"cannot invoke in phase {self.phase}")
            self.phase = "invoke"
            crashes_before = len(self.crashes)
        inv = self._new_invocation(payload, timeout_s)
        inv.tenant_id = tenant_id
        self._thaw()
        inv.started_at = time.monotonic()
        deadline = inv.started_at + timeout_s
        self.hub.emit("platform.start", _records.start(inv.request_id, tenant_id))
        receivers = self._deliver_invoke(inv)
        outcome = self._await_runtime(inv, deadline, crashes_before, timeout_s)
        assert inv.done_at is not None
        duration_ms = (inv.done_at - inv.started_at) * 1000
        if outcome.status in ("success", "error"):
            # Every line the handler wrote precedes runtimeDone in the stream, as in Lambda.
            self._drain_function_output()
        self.hub.emit(
            "platform.runtimeDone",
            _records.runtime_done(
                inv.request_id,
                outcome.status,
                duration_ms,
                len(inv.response or b""),
                outcome.error_type,
                tenant_id,
            ),
        )
        post_runtime_ms = 0.0
        if outcome.reset is None:
            outcome, post_runtime_ms = self._await_extensions(
                inv, receivers, deadline, crashes_before, outcome
            )
        total_ms = (time.monotonic() - inv.started_at) * 1000
        self.hub.emit(
            "platform.report",
            _records.report(
                inv.request_id,
                outcome.status,
                total_ms,
                self.cfg.memory_mb,
                sum(max_rss_mb(p.pid) for p in self._all_processes() if p.alive),
                self.init_duration_ms if self._report_init else None,
                outcome.error_type,
                tenant_id,
            ),
        )
        self._report_init = False
        with self.cond:
            settled = self.phase == "invoke"
            if settled:
                self.phase = "ready"
            crashed_ext = tuple(c for c in self.crashes[crashes_before:] if c[0] != "runtime")
        if outcome.reset is None and settled:
            self._freeze()
        return InvokeResult(
            request_id=inv.request_id,
            # The caller gets the response as soon as the runtime posts it, even when the
            # extensions then overrun the deadline (status timeout, environment reset).
            payload=_decode(inv.response),
            error=outcome.error,
            status=outcome.status,
            duration_ms=duration_ms,
            post_runtime_ms=post_runtime_ms,
            total_ms=total_ms,
            reset_reason=outcome.reset,
            crashed_extensions=crashed_ext,
        )

    def _invoke_managed(self, payload: bytes, timeout_s: float, tenant_id: str | None) -> InvokeResult:
        """One of possibly many concurrent invokes on Lambda Managed Instances: no INVOKE
        event (extensions cannot register for it), no freeze, no platform.runtimeDone."""
        with self.cond:
            if self.phase != "ready":
                raise RuntimeError(f"cannot invoke in phase {self.phase}")
            crashes_before = len(self.crashes)
        inv = self._new_invocation(payload, timeout_s)
        inv.tenant_id = tenant_id
        inv.started_at = time.monotonic()
        deadline = inv.started_at + timeout_s
        self.hub.emit("platform.start", _records.start(inv.request_id, tenant_id, self.arn))
        with self.cond:
            self.runtime_queue.append(inv)
            self.cond.notify_all()
        outcome = self._await_runtime(inv, deadline, crashes_before, timeout_s)
        assert inv.done_at is not None
        duration_ms = (inv.done_at - inv.started_at) * 1000
        if outcome.status == "timeout":
            # Each invoke has its own timeout and the environment serves the others on:
            # forget this one (a late answer is refused) instead of resetting.
            outcome = _Outcome("timeout", outcome.error)
            with self.cond:
                if inv in self.runtime_queue:
                    self.runtime_queue.remove(inv)
                self.inflight.pop(inv.request_id, None)
        if outcome.status in ("success", "error"):
            self._drain_function_output()
        self.hub.emit(
            "platform.report",
            _records.report_managed(
                inv.request_id, outcome.status, duration_ms, outcome.error_type, tenant_id
            ),
        )
        with self.cond:
            crashed_ext = tuple(c for c in self.crashes[crashes_before:] if c[0] != "runtime")
        return InvokeResult(
            request_id=inv.request_id,
            payload=_decode(inv.response),
            error=outcome.error,
            status=outcome.status,
            duration_ms=duration_ms,
            post_runtime_ms=0.0,
            total_ms=duration_ms,
            reset_reason=outcome.reset,
            crashed_extensions=crashed_ext,
        )

    def _new_invocation(self, payload: bytes, timeout_s: float) -> Invocation:
        now_ms = int(time.time() * 1000)
        return Invocation(
            request_id=str(uuid.uuid4()),
            body=payload,
            deadline_ms=now_ms + int(timeout_s * 1000),
            started_wall_ms=now_ms,
            arn=self.arn,
            trace_id=(
                f"Root=1-{now_ms // 1000:08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
            ),
            started_at=0.0,
        )

    def _deliver_invoke(self, inv: Invocation) -> list[Extension]:
        event = {
            "eventType": "INVOKE",
            "deadlineMs": inv.deadline_ms,
            "requestId": inv.request_id,
            "invokedFunctionArn": inv.arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace_id},
        }
        with self.cond:
            receivers = [e for e in self.extensions.values() if "INVOKE" in e.events]
            for ext in receivers:
                ext.queue.append(dict(event))
            self.runtime_queue.append(inv)
            self.cond.notify_all()
        return receivers

    def _interrupted(self) -> bool:
        """A shutdown (or close) from another thread ended the environment mid-invoke."""
        return self.phase in ("shutdown", "dead")

    def _await_runtime(
        self, inv: Invocation, deadline: float, crashes_before: int, timeout_s: float
    ) -> _Outcome:
        with self.cond:
            self._wait(
                lambda: inv.done_at is not None or len(self.crashes) > crashes_before or self._interrupted(),
                deadline,
            )
            if inv.done_at is not None:
                return _Outcome("error", inv.error) if inv.error is not None else _Outcome("success")
            inv.done_at = time.monotonic()
            crashed = self.crashes[crashes_before:]
            interrupted = self._interrupted()
        if crashed:
            runtime_dead = any(n == "runtime" for n, _ in crashed)
            etype = "Runtime.ExitError" if runtime_dead else "Extension.Crash"
            return _Outcome("failure", _crash_error(etype, crashed[0]), "failure")
        if interrupted:
            return _Outcome(
                "failure",
                {
                    "errorType": "Sandbox.ShutDown",
                    "errorMessage": "the environment was shut down during the invoke",
                },
            )
        return _Outcome("timeout", _timeout_error(inv.request_id, timeout_s), "timeout")

    def _await_extensions(
        self,
        inv: Invocation,
        receivers: list[Extension],
        deadline: float,
        crashes_before: int,
        outcome: _Outcome,
    ) -> tuple[_Outcome, float]:
        """The invoke ends when the runtime and every extension wait in next again."""
        with self.cond:
            ok = self._wait(
                lambda: (
                    len(self.crashes) > crashes_before
                    or self._interrupted()
                    or (
                        self.runtime_waiting
                        and all(e.waiting and not e.queue for e in self.extensions.values())
                    )
                ),
                deadline,
            )
            crashed = self.crashes[crashes_before:]
            interrupted = self._interrupted()
            last_next = max((e.last_next_at for e in receivers), default=0.0)
        assert inv.done_at is not None
        if crashed:
            return _Outcome("failure", _crash_error("Extension.Crash", crashed[0]), "failure"), 0.0
        if interrupted:
            return outcome, 0.0
        if not ok:
            return _Outcome(
                "timeout", outcome.error or _timeout_error(inv.request_id, _inv_timeout(inv)), "timeout"
            ), 0.0
        return outcome, max(0.0, (last_next - inv.done_at) * 1000)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, reason: str) -> ShutdownResult:
        cfg = self.cfg
        t0 = time.monotonic()
        with self.cond:
            if self.phase == "dead":
                raise RuntimeError("environment already shut down")
            self.phase = "shutdown"
        self._thaw()
        deadline_ms = int(time.time() * 1000 + cfg.shutdown_timeout_s * 1000)
        deadline = t0 + cfg.shutdown_timeout_s
        with self.cond:
            receivers = {e.name for e in self._external() if "SHUTDOWN" in e.events}
            for ext in self._external():
                if ext.name in receivers:
                    ext.queue.append(
                        {"eventType": "SHUTDOWN", "deadlineMs": deadline_ms, "shutdownReason": reason}
                    )
            self.cond.notify_all()
        self._on_event("shutdown", reason)
        # The runtime gets SIGTERM and a short grace period, then SIGKILL.
        if self.runtime is not None and self.runtime.alive:
            self.runtime.signal_group(signal.SIGTERM)
            if not self.runtime.exited.wait(cfg.runtime_shutdown_s):
                self.runtime.kill()
        # Extensions that did not ask for SHUTDOWN cannot know to exit: kill them now.
        for name, proc in self.processes.items():
            if name not in receivers and proc.alive:
                proc.kill()
        for name in receivers:
            waited = self.processes.get(name)
            if waited is not None:
                waited.exited.wait(max(0.0, deadline - time.monotonic()))
        killed = tuple(n for n in sorted(receivers) if n in self.processes and self.processes[n].alive)
        self.kill_all()
        return self._finish(reason, t0, deadline_ms, receivers, killed)

    def _finish(
        self, reason: str, t0: float, deadline_ms: int, receivers: set[str], killed: tuple[str, ...]
    ) -> ShutdownResult:
        procs = self._all_processes()
        for p in procs:
            p.exited.wait(2.0)
            p.join_output(1.0)
        if self.log_server is not None:
            self.log_server.join_output(1.0)
        before = self.hub.stats.undelivered_records
        self.hub.close()
        exited_by_themselves = tuple(n for n in sorted(receivers) if n not in killed and n in self.processes)
        return ShutdownResult(
            reason=reason,
            duration_ms=(time.monotonic() - t0) * 1000,
            exit_codes={p.name: p.returncode for p in procs},
            exited_by_themselves=exited_by_themselves,
            killed=killed,
            undelivered_records=self.hub.stats.undelivered_records - before,
            deadline_ms=deadline_ms,
        )

    def kill_all(self) -> None:
        """SIGKILL every process group and release every blocked API call."""
        for p in self._all_processes():
            p.kill()
        if self.log_server is not None:
            self.log_server.close()
        with self.cond:
            self.phase = "dead"
            self.cond.notify_all()

    def close(self) -> None:
        """Last-resort cleanup (used by __exit__ and on errors): nothing may leak."""
        self.kill_all()
        for p in self._all_processes():
            p.exited.wait(2.0)
        self.hub.close()


def extension_environment(runtime_env: Mapping[str, str], path_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in runtime_env.items() if k not in WITHHELD_FROM_EXTENSIONS}
    env["PATH"] = path_prefix + os.pathsep + runtime_env.get("PATH", "")
    return env
