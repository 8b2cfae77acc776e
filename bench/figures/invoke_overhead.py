"""Added time per invoke: Lambda's post-runtime time (runtime response → the last extension's
``next``; billed, holds the slot), both builds, vs the same function without an extension.

Back-to-back invokes (dense traffic) with the default settings: the adaptive policy ships
in the thawed time between invokes, so it should add no wait. Also end_of_invoke (ship
before every freeze) and batch with no flush due, for comparison. The function writes 10
typical lines per invoke; the emulator freezes the environment after every invoke.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.lambda_emulator import InvokeResult

from ..context import Build, Context
from ..model import BUILDS, Goal, Measured, Row
from ..session import session
from ..stats import Summary

LINES_PER_INVOKE = 10
LINE_SIZE = 200
DENSE_GOAL = Goal(text="p50 added ≤ 1 ms", compare="added_p50", threshold=1.0, builds=BUILDS)

#: (key, label, extension env); the first is the default configuration.
VARIANTS: tuple[tuple[str, str, Mapping[str, str]], ...] = (
    ("default", "post-runtime time, default settings, dense (back-to-back) invokes", {}),
    ("end_of_invoke", "post-runtime time, flush=end_of_invoke", {"LOKI_FLUSH": "end_of_invoke"}),
    ("batch", "post-runtime time, flush=batch, no flush due",
     {"LOKI_FLUSH": "batch", "DISPATCH_MIN_BATCH_SIZE": "10000", "LOKI_FLUSH_INTERVAL_MS": "60000"}),
)


def _measure(ctx: Context, build: Build | None, env: Mapping[str, str], invokes: int) -> list[InvokeResult]:
    with session(ctx, build, env=env) as s:
        s.keep_results = False
        for _ in range(ctx.pick(2, 10)):  # warm-up: cold start, first connection to Loki
            s.emit(LINES_PER_INVOKE, LINE_SIZE)
        s.keep_results = True
        for _ in range(invokes):
            s.emit(LINES_PER_INVOKE, LINE_SIZE)
        s.shutdown()
        if build is not None and s.stored() != s.emitted:
            raise RuntimeError(f"{build.name}: lines lost while measuring: stored {s.stored()} "
                               f"of {s.emitted}")
        return s.results


class InvokeOverhead:
    name = "invoke_overhead"
    title = "Added time per invoke"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        invokes = ctx.pick(5, 300)
        variants = VARIANTS[:1] if smoke else VARIANTS
        m = Measured(params={"invokes": invokes, "lines_per_invoke": LINES_PER_INVOKE})
        none = _measure(ctx, None, {}, invokes)
        baseline = Summary.of([r.post_runtime_ms for r in none])
        for key, label, env in variants:
            values: dict[str, Summary] = {}
            for b in ctx.builds:
                ctx.log(f"   {key} {b.name}")
                values[b.name] = Summary.of([r.post_runtime_ms for r in _measure(ctx, b, env, invokes)])
            m.rows.append(Row(key=f"post_runtime_{key}", label=f"{label}, p50", unit="ms", values=values,
                              show="p50", baseline=baseline, baseline_label="no extension",
                              goals=(DENSE_GOAL,) if key == "default" else ()))
        m.notes.append(
            f"{invokes} back-to-back invokes per variant and build after a warm-up, {LINES_PER_INVOKE} lines "
            f"of {LINE_SIZE} B each; post-runtime = runtime response → last extension `next` as the "
            "emulator observes it."
        )
        return m


FIGURE = InvokeOverhead()
