"""What the emulator reports back: results of init, invoke and shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InitResult:
    duration_ms: float
    #: Names of the external extensions that registered, in start order.
    extensions: tuple[str, ...]
    #: PIDs by extension name (the launcher execs the interpreter, so this is the extension).
    extension_pids: dict[str, int]
    runtime_pid: int


@dataclass(frozen=True)
class InvokeResult:
    request_id: str
    #: The runtime's response decoded as JSON (raw text when it is not JSON); None when the
    #: runtime gave none (handler error, crash, function timeout).
    payload: Any
    #: The error document (``{"errorType", "errorMessage", ...}``) or None.
    error: dict[str, Any] | None
    #: success | error (the handler raised) | failure (runtime or extension crashed) | timeout.
    status: str
    #: Event delivered → runtime response (Lambda's runtimeDone durationMs).
    duration_ms: float
    #: Runtime response → the last extension's ``next`` (time the extensions added).
    post_runtime_ms: float
    #: Event delivered → environment frozen (Lambda's report durationMs).
    total_ms: float
    #: Set when this invoke ended the environment (timeout, crash): the next invoke re-inits.
    reset_reason: str | None = None
    #: Extensions (name, exit code) that exited before SHUTDOWN during this invoke.
    crashed_extensions: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ShutdownResult:
    reason: str
    duration_ms: float
    #: Exit code of every process by name ("runtime" and each extension); negative = signal.
    exit_codes: dict[str, int | None]
    #: Extensions that exited by themselves before the deadline.
    exited_by_themselves: tuple[str, ...]
    #: Extensions still running at the deadline and SIGKILLed.
    killed: tuple[str, ...]
    #: Telemetry records still buffered for a subscriber when the environment ended.
    undelivered_records: int
    deadline_ms: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sigkill_needed(self) -> bool:
        return bool(self.killed)


class LambdaInitError(RuntimeError):
    """Init failed (init error, crash or the 10 s budget); the environment was torn down."""

    def __init__(self, error_type: str, message: str, stderr: dict[str, list[str]] | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        #: Captured stderr of each process, for diagnosing the failure.
        self.stderr = stderr or {}
