"""Init: extension process start → its first ``next`` call, both builds.

Each build is started exactly as Lambda starts it (the Python build's sh launcher, which
execs ``python3`` on the layer with its unchecked-hash ``.pyc``; the native build's static
binary), clean environment, against a stub Extensions/Telemetry API that timestamps each call
on arrival; its first ``next`` is answered with SHUTDOWN so it exits. The two builds
alternate start by start, so load drift on a shared machine hits both alike. Baseline: a
bare ``python3 -I -S -c pass`` (start to exit) on the same interpreter.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..context import Build, Context
from ..extapi_stub import ExtensionsApiStub
from ..model import Goal, Measured, Row
from ..stats import Summary, interleave

EXIT_TIMEOUT_S = 10.0
RATIO_GOAL = Goal(text="native ≤ 0.3x python", compare="native_ratio", threshold=0.3)


def _shim(workdir: Path, python: str) -> Path:
    """A directory whose ``python3`` is ``python``: first on PATH, the launcher's ``python3``
    fallback (there is no /var/lang/bin/python3 here) picks the interpreter we measure."""
    shim = workdir / "pyshim"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "python3"
    if not link.is_symlink():
        link.symlink_to(python)
    return shim


def base_env(shim: Path, **extra: str) -> dict[str, str]:
    """A clean Lambda-like environment (no PYTHONPATH or venv leaking from the bench)."""
    env = {
        "PATH": f"{shim}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }
    env.update(extra)
    return env


def start_to_next(build: Build, shim: Path, register_ms: list[float]) -> float:
    """One start of ``build``: ms from fork/exec to its first ``next``."""
    with ExtensionsApiStub() as stub:
        env = base_env(shim, AWS_LAMBDA_RUNTIME_API=stub.address,
                       LOKI_URL=f"http://{stub.address}/loki/api/v1/push")
        t0 = time.monotonic_ns()
        proc = subprocess.Popen([str(build.extension)], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def mark_exit() -> None:  # an early exit must not cost the whole timeout
            proc.wait()
            stub.mark("exit")

        threading.Thread(target=mark_exit, daemon=True).start()
        try:
            first_next = stub.wait_for("next", timeout=EXIT_TIMEOUT_S, or_else="exit")
            if first_next is None:
                proc.kill()
                _, err = proc.communicate(timeout=EXIT_TIMEOUT_S)
                raise RuntimeError(f"{build.name} build never called next (exit {proc.returncode}): "
                                   f"{err.decode(errors='replace')[-800:]}")
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


class Init:
    name = "init"
    title = "Init"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        reps = ctx.pick(2, 30)
        shim = _shim(ctx.workdir, ctx.extension_python)
        register: dict[str, list[float]] = {b.name: [] for b in ctx.builds}

        def bare() -> float:
            t0 = time.monotonic_ns()
            subprocess.run([str(shim / "python3"), "-I", "-S", "-c", "pass"], check=True, env=base_env(shim))
            return (time.monotonic_ns() - t0) / 1e6

        def starter(b: Build) -> Callable[[], float]:
            return lambda: start_to_next(b, shim, register[b.name])

        fns: list[Callable[[], float]] = [bare, *(starter(b) for b in ctx.builds)]
        for fn in fns:  # warm the page cache for every variant before timing
            fn()
        for samples in register.values():
            samples.clear()
        bare_ms, *per_build = interleave(fns, reps)
        values = {b.name: Summary.of(s) for b, s in zip(ctx.builds, per_build, strict=True)}
        m = Measured(params={"reps": reps, "python": ctx.extension_python})
        m.rows.append(Row(key="init_to_first_next", label="process start → first next", unit="ms",
                          values=values, baseline=Summary.of(bare_ms),
                          baseline_label="`python3 -I -S -c pass`", goals=(RATIO_GOAL,)))
        if all(register.values()):
            m.rows.append(Row(key="init_to_register", label="process start → register", unit="ms",
                              values={k: Summary.of(v) for k, v in register.items()}))
        m.notes.append(
            f"Python build on {Path(ctx.extension_python).name} as deployed (sh launcher, unchecked-hash "
            ".pyc from the layer tree); native build = the static x86_64 binary. Start = just before "
            "fork/exec; first next = arrival at a 127.0.0.1 Extensions-API stub; the builds and the "
            f"bare interpreter alternate, {reps} starts each."
        )
        return m


FIGURE = Init()
