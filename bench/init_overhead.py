"""Figure 1: init overhead: extension process start → its first ``next`` call, vs a
bare ``python3 -I -S -c pass`` (start to exit) on the same interpreter.

The extension is started exactly as Lambda starts it (the sh launcher, no shell,
clean environment) against a stub Extensions/Telemetry API that timestamps each
call on arrival; its first ``next`` is then answered with SHUTDOWN so it exits.
"""

from __future__ import annotations

import subprocess
import threading
import time

from ._extapi_stub import ExtensionsApiStub
from .context import Context
from .model import FigureResult, Goal, Metric
from .pyenv import base_env, launcher, python_shim_dir
from .stats import Summary, interleave

NAME = "init_overhead"
TITLE = "Init overhead"
GOAL = Goal(text="≤ 2x bare python3 start", compare="ratio", threshold=2.0)
EXIT_TIMEOUT_S = 10.0


def run(ctx: Context) -> FigureResult:
    shim = python_shim_dir(ctx.workdir, ctx.extension_python)
    python3 = str(shim / "python3")
    reps = ctx.pick(3, 30)
    register_ms: list[float] = []

    def bare() -> float:
        t0 = time.monotonic_ns()
        subprocess.run([python3, "-I", "-S", "-c", "pass"], check=True, env=base_env(shim))
        return (time.monotonic_ns() - t0) / 1e6

    def extension() -> float:
        with ExtensionsApiStub() as stub:
            env = base_env(
                shim,
                AWS_LAMBDA_RUNTIME_API=stub.address,
                LOKI_URL=f"http://{stub.address}/loki/api/v1/push",
            )
            t0 = time.monotonic_ns()
            proc = subprocess.Popen(
                [str(launcher(ctx.layer_dir))],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            # An early exit must not cost the whole timeout: a waiter marks it on the stub.
            def mark_exit() -> None:
                proc.wait()
                stub.mark("exit")

            threading.Thread(target=mark_exit, daemon=True).start()
            try:
                first_next = stub.wait_for("next", timeout=EXIT_TIMEOUT_S, or_else="exit")
                if first_next is None:
                    proc.kill()
                    _, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
                    raise RuntimeError(
                        f"extension never called next (exit {proc.returncode}): {err.decode()[-800:]}"
                    )
                reg = stub.times().get("register")
                if reg is not None:
                    register_ms.append((reg - t0) / 1e6)
                stub.release_shutdown()
                proc.communicate(timeout=EXIT_TIMEOUT_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            return (first_next - t0) / 1e6

    bare()  # warm the page cache for both variants before timing
    extension()
    register_ms.clear()
    ext_ms, bare_ms = interleave([extension, bare], reps)
    res = FigureResult(name=NAME, title=TITLE, params={"reps": reps, "python": ctx.extension_python})
    res.metrics.append(
        Metric(
            key="init_to_first_next",
            label="extension start → first next",
            unit="ms",
            value=Summary.of(ext_ms),
            baseline=Summary.of(bare_ms),
            baseline_label="`python3 -I -S -c pass`",
            goal=GOAL,
        )
    )
    if register_ms:
        res.metrics.append(
            Metric(
                key="init_to_register",
                label="extension start → register",
                unit="ms",
                value=Summary.of(register_ms),
                baseline=Summary.of(bare_ms),
                baseline_label="`python3 -I -S -c pass`",
            )
        )
    res.notes.append(
        "Start = just before fork/exec of the sh launcher; first next = arrival at a 127.0.0.1 "
        "Extensions-API stub. Baseline = fork/exec to exit of the same interpreter."
    )
    return res
