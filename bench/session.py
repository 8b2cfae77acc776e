"""One benchmark environment: the local Loki receiver plus the Lambda emulator running the
benchmark function with one build of the extension (or none).

Figures drive it with :meth:`Session.emit` and read what arrived through the receiver;
waits are the receiver's condition variable with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from loki_telemetry_extension.drop_report import parse_drop_report

from harness.lambda_emulator import InvokeResult, LambdaEmulator, ShutdownResult
from harness.loki_receiver import LokiReceiver

from . import procfs, workload
from .context import EXTENSION_NAME, Build, Context

FUNCTION_NAME = "bench-fn"
#: The function's own lines: the extension's reports carry type="extension".
FUNCTION_LINES = f'{{function="{FUNCTION_NAME}", type=""}}'


def reported_drops(lines: list[str]) -> dict[str, int]:
    """The latest drop counters the extension reported (cumulative), {} when none."""
    latest: dict[str, int] = {}
    for line in lines:
        counts = parse_drop_report(line)
        if counts is not None:
            latest = counts
    return latest


@dataclass
class Session:
    ctx: Context
    build: Build | None
    lam: LambdaEmulator
    rx: LokiReceiver
    emitted: int = 0
    invokes: int = 0
    results: list[InvokeResult] = field(default_factory=list)
    keep_results: bool = True

    def emit(self, lines: int, size: int, tag: str = "b", timeout_s: float | None = None) -> InvokeResult:
        """One invoke that writes ``lines`` lines of ``size`` bytes (sequence numbers continue)."""
        res = self.lam.invoke(workload.event(tag, lines, size, seq=self.emitted), timeout_s=timeout_s)
        if res.status != "success":
            raise RuntimeError(f"benchmark invoke failed: {res.status} {res.error}")
        self.emitted += lines
        self.invokes += 1
        if self.keep_results:
            self.results.append(res)
        return res

    @property
    def extension_pid(self) -> int:
        return self.lam.extension_pids[EXTENSION_NAME]

    def stored(self) -> int:
        return self.rx.count(FUNCTION_LINES)

    def wait_stored(self, n: int, timeout: float) -> bool:
        return self.rx.wait_for_count(n, FUNCTION_LINES, timeout=timeout)

    def drain(self, timeout_s: float, thaw_ms: int = 1200) -> bool:
        """Invoke a function that logs nothing and stays busy ``thaw_ms`` until every emitted
        line is stored (True), or the rest is reported dropped or the deadline passes (False).
        A frozen extension cannot push (Lambda's semantics), so the environment is thawed."""
        deadline = time.monotonic() + timeout_s
        while self.stored() < self.emitted:
            if time.monotonic() >= deadline:
                return False
            if self.stored() + sum(self.drops().values()) >= self.emitted:
                return False  # the rest was dropped (and reported): waiting will not bring it
            self.lam.invoke(workload.event("drain", 0, 0, sleep_ms=thaw_ms))
        return True

    def cpu_s(self) -> float:
        return procfs.cpu_seconds(self.extension_pid)

    def peak_rss_mib(self) -> float:
        return procfs.peak_rss_mib(self.extension_pid)

    def rss_mib(self) -> float:
        return procfs.rss_mib(self.extension_pid)

    def shutdown(self) -> ShutdownResult:
        return self.lam.shutdown()

    def drops(self) -> dict[str, int]:
        return reported_drops(self.lam.extension_stderr(EXTENSION_NAME))

    def latencies_ms(self, tag: str) -> list[float]:
        """Write → stored, in ms, of every stored line with ``tag``."""
        out: list[float] = []
        for e in self.rx.entries(FUNCTION_LINES):
            p = workload.parse_line(e.line)
            if p is not None and p.tag == tag:
                out.append((e.stored_at_ns - p.emit_ns) / 1e6)
        return out


@contextmanager
def session(
    ctx: Context,
    build: Build | None,
    *,
    env: Mapping[str, str] | None = None,
    receiver: Mapping[str, Any] | None = None,
    timeout_s: float = 30.0,
    memory_mb: int = 128,
    **emulator: Any,
) -> Iterator[Session]:
    """A started receiver + emulator with ``build``'s layer (None: no extension); everything is
    stopped and killed on exit. ``emulator`` passes further options (e.g. managed_instances)."""
    code = ctx.workdir / "code"
    handler = workload.write_function(code)
    with LokiReceiver(**dict(receiver or {})) as rx:
        lam = LambdaEmulator(
            handler=handler,
            code_dir=code,
            layers=[build.layer] if build is not None else [],
            env={"LOKI_URL": rx.url, **(env or {})},
            function_name=FUNCTION_NAME,
            memory_mb=memory_mb,
            timeout_s=timeout_s,
            extension_python=ctx.extension_python,
            **emulator,
        )
        try:
            lam.start()
            yield Session(ctx=ctx, build=build, lam=lam, rx=rx)
        finally:
            lam.close()
