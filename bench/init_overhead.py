"""Figure 1: init overhead: extension process start → its first ``next`` call, vs a
bare ``python3 -I -S -c pass`` (start to exit) on the same interpreter.

The extension is started exactly as Lambda starts it (the sh launcher, no shell,
clean environment) against a stub Extensions/Telemetry API that timestamps each
call on arrival; its first ``next`` is then answered with SHUTDOWN so it exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from ._extapi_stub import ExtensionsApiStub
from .context import Context
from .model import FigureResult, Goal, Metric
from .pyenv import base_env, launcher, python_shim_dir
from .stats import Summary, interleave

NAME = "init_overhead"
TITLE = "Init overhead"
GOAL = Goal(text="≤ 2x bare python3 start", compare="ratio", threshold=2.0)
EXIT_TIMEOUT_S = 10.0


def _plain_layer(ctx: Context) -> Path:
    """A copy of the layer without ``__pycache__`` (``LokiTelemetryLayer(precompile=False)``)."""
    dst = ctx.workdir / "layer-no-pyc"
    if not dst.exists():
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ctx.layer_dir, dst, ignore=skip, symlinks=True)
    return dst


def _deployed_layer(ctx: Context, python: str) -> Path:
    """The layer as ``LokiTelemetryLayer`` ships it by default: unchecked-hash .pyc compiled by
    the runtime's own interpreter (PEP 552), so a cold start on read-only /opt compiles nothing."""
    dst = ctx.workdir / f"layer-pyc-{Path(python).resolve().name}"
    if not dst.exists():
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ctx.layer_dir, dst, ignore=skip, symlinks=True)
        subprocess.run(
            [python, "-I", "-c", _COMPILE, str(dst)], check=True, capture_output=True, timeout=120
        )
    return dst


_COMPILE = (
    "import compileall, py_compile, sys\n"
    "ok = compileall.compile_dir(sys.argv[1], ddir='/opt', quiet=1, optimize=0,\n"
    "    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
    "sys.exit(0 if ok else 1)\n"
)


def _drop_bytecode(layer: Path) -> None:
    # /opt is read-only on Lambda, so no start ever finds .pyc that an earlier start wrote.
    for cache in layer.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def _measure(
    ctx: Context, python: str, reps: int, *, precompiled: bool = True
) -> tuple[list[float], list[float], list[float]]:
    """(extension start → first next, bare start, extension start → register) samples in ms.

    ``precompiled``: the layer as shipped by default (unchecked-hash .pyc); otherwise a layer
    without .pyc whose every start compiles what it imports (read-only /opt keeps none)."""
    layer = _deployed_layer(ctx, python) if precompiled else _plain_layer(ctx)
    cold = not precompiled
    shim = python_shim_dir(ctx.workdir / f"shim-{abs(hash(python))}", python)
    python3 = str(shim / "python3")
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
            if cold:
                _drop_bytecode(layer)
            t0 = time.monotonic_ns()
            proc = subprocess.Popen(
                [str(launcher(layer))],
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
    return ext_ms, bare_ms, register_ms


def _other_pythons(current: str) -> list[tuple[str, str]]:
    """(version, interpreter) of each Lambda Python runtime pyenv has, besides ``current``."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    out: list[tuple[str, str]] = []
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        found = sorted(root.glob(f"{minor}.*/bin/python3"))
        if found and found[-1].resolve() != Path(current).resolve():
            out.append((minor, str(found[-1])))
    return out


def run(ctx: Context) -> FigureResult:
    reps = ctx.pick(3, 30)
    ext_ms, bare_ms, register_ms = _measure(ctx, ctx.extension_python, reps)
    warm_ms, warm_bare_ms, _ = _measure(ctx, ctx.extension_python, reps, precompiled=False)
    res = FigureResult(name=NAME, title=TITLE, params={"reps": reps, "python": ctx.extension_python})
    res.metrics.append(
        Metric(
            key="init_to_first_next",
            label=f"extension start → first next ({Path(ctx.extension_python).name}, as deployed: "
            "layer with unchecked-hash .pyc)",
            unit="ms",
            value=Summary.of(ext_ms),
            baseline=Summary.of(bare_ms),
            baseline_label="`python3 -I -S -c pass`",
            goal=GOAL,
        )
    )
    res.metrics.append(
        Metric(
            key="init_to_first_next_no_pyc",
            label="extension start → first next, layer without .pyc (precompile=False)",
            unit="ms",
            value=Summary.of(warm_ms),
            baseline=Summary.of(warm_bare_ms),
            baseline_label="`python3 -I -S -c pass`",
            goal=GOAL,
        )
    )
    if register_ms:
        res.metrics.append(
            Metric(
                key="init_to_register",
                label="extension start → register (as deployed)",
                unit="ms",
                value=Summary.of(register_ms),
                baseline=Summary.of(bare_ms),
                baseline_label="`python3 -I -S -c pass`",
            )
        )
    if not ctx.smoke:
        for version, python in _other_pythons(ctx.extension_python):
            ctx.log(f"   Python {version}")
            e, b, _ = _measure(ctx, python, max(10, reps // 2))
            res.metrics.append(
                Metric(
                    key=f"init_to_first_next_py{version.replace('.', '')}",
                    label=f"extension start → first next, Python {version}, as deployed",
                    unit="ms",
                    value=Summary.of(e),
                    baseline=Summary.of(b),
                    baseline_label=f"`python{version} -I -S -c pass`",
                    goal=GOAL,
                )
            )
    res.notes.append(
        "As deployed = the layer as LokiTelemetryLayer ships it by default: unchecked-hash .pyc compiled "
        "by the measured interpreter. Without .pyc (precompile=False), /opt being read-only, every cold "
        "start compiles what it imports: that variant removes __pycache__ before each start. "
        "Start = just before fork/exec of the sh launcher; first next = arrival at a 127.0.0.1 "
        "Extensions-API stub. Baseline = fork/exec to exit of the same interpreter."
    )
    return res
