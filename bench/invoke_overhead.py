"""Figure 2: time the extension adds to each invoke: Lambda's post-runtime environment
time (runtime response → the last extension's ``next``; billed, holds the slot) with no
flush due and with a flush due, vs the same function without the extension.

The function writes 10 typical lines per invoke. Measured by the emulator
(``InvokeResult.post_runtime_ms``), which freezes the environment after every invoke.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.lambda_emulator import InvokeResult

from .context import Context
from .model import FigureResult, Goal, Metric
from .session import session
from .stats import Summary

NAME = "invoke_overhead"
TITLE = "Added time per invoke"
GOAL = Goal(text="<= 1 ms p50 added (no flush due)", compare="p50_added", threshold=1.0)
LINES_PER_INVOKE = 10
LINE_SIZE = 200

#: (key, label, extension env or None for "no extension").
VARIANTS: tuple[tuple[str, str, Mapping[str, str] | None], ...] = (
    ("none", "no extension", None),
    (
        "no_flush",
        "batch mode, no flush due",
        {"DISPATCH_MIN_BATCH_SIZE": "10000", "LOKI_FLUSH_INTERVAL_MS": "60000"},
    ),
    ("batch_flush", "batch mode, flush due every invoke (batch size 10)", {"DISPATCH_MIN_BATCH_SIZE": "10"}),
    (
        "ship_before_freeze",
        "ship-before-freeze mode (flush before every freeze)",
        {"LOKI_SHIP_BEFORE_FREEZE": "true", "LOKI_BUFFER_TIMEOUT_MS": "25"},
    ),
)


def _measure(ctx: Context, env: Mapping[str, str] | None, invokes: int) -> list[InvokeResult]:
    with session(ctx, extension=env is not None, env=env) as s:
        s.keep_results = False
        for _ in range(ctx.pick(2, 10)):  # warm-up: imports, first connection to Loki
            s.emit(LINES_PER_INVOKE, LINE_SIZE)
        s.keep_results = True
        for _ in range(invokes):
            s.emit(LINES_PER_INVOKE, LINE_SIZE)
        s.shutdown()
        if env is not None and s.stored() != s.emitted:
            raise RuntimeError(f"lines lost while measuring: stored {s.stored()} of {s.emitted}")
        return s.results


def run(ctx: Context) -> FigureResult:
    invokes = ctx.pick(10, 300)
    res = FigureResult(
        name=NAME, title=TITLE, params={"invokes": invokes, "lines_per_invoke": LINES_PER_INVOKE}
    )
    post: dict[str, Summary] = {}
    dur: dict[str, Summary] = {}
    for key, _label, env in VARIANTS:
        ctx.log(f"   variant {key}")
        results = _measure(ctx, env, invokes)
        post[key] = Summary.of([r.post_runtime_ms for r in results])
        dur[key] = Summary.of([r.duration_ms for r in results])
    for key, label, _env in VARIANTS[1:]:
        res.metrics.append(
            Metric(
                key=f"post_runtime_{key}",
                label=f"post-runtime time, {label}",
                unit="ms",
                value=post[key],
                baseline=post["none"],
                baseline_label="no extension",
                goal=GOAL if key == "no_flush" else None,
            )
        )
    res.metrics.append(
        Metric(
            key="function_duration_no_flush",
            label="function duration (runtime), batch mode, no flush due",
            unit="ms",
            value=dur["no_flush"],
            baseline=dur["none"],
            baseline_label="no extension",
            note="the extension runs beside the function, and with a subscriber the emulator also "
            "buffers and posts telemetry: both compete for the 2 cores during the invoke",
        )
    )
    res.notes.append(
        f"{invokes} invokes per variant after a warm-up, {LINES_PER_INVOKE} lines of {LINE_SIZE} B each; "
        "post-runtime = runtime response → last extension `next` as the emulator observes it."
    )
    return res
