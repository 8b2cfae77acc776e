"""Figure 3: CPU per shipped line: user+sys of the extension process (from /proc) over
lines stored in Loki, for short, typical and long lines, vs the in-process floor
(``cpu_floor``: parse the same telemetry JSON, build the push body, gzip).

Batch mode (the default). Each sample: read the extension's CPU, run invokes that
write the lines, thaw the environment until every line is stored, read the CPU again.
"""

from __future__ import annotations

from . import cpu_floor, workload
from .context import Context
from .model import FigureResult, Goal, Metric
from .session import session
from .stats import Summary

NAME = "cpu_per_line"
TITLE = "CPU per shipped line"
GOAL = Goal(text="<= 2x the in-process floor", compare="ratio", threshold=2.0)
#: Lines per invoke by size class (keeps each invoke's output around 100-800 KB).
PER_INVOKE = {"short": 2000, "typical": 1000, "long": 100}


def run(ctx: Context) -> FigureResult:
    reps = ctx.pick(1, 5)
    res = FigureResult(name=NAME, title=TITLE, params={"reps": reps})
    for cls, size in workload.LINE_SIZES.items():
        per_invoke = PER_INVOKE[cls]
        invokes = ctx.pick(1, 10)
        samples: list[float] = []
        # A buffer that holds the whole sample: this figure is CPU per line, not the drop policy
        # (a burst beyond max_buffer_bytes between thaws drops the oldest: see the fault figures).
        with session(ctx, env={"LOKI_MAX_BUFFER_BYTES": str(64 * 1024 * 1024)}) as s:
            if not ctx.smoke:  # warm-up: first connection, imports on first use
                s.emit(per_invoke, size, tag="warm")
                if not s.drain(timeout_s=60):
                    raise RuntimeError(f"{cls}: warm-up lines not all stored ({s.stored()}/{s.emitted}, "
                                       f"drops {s.drops()})")
            floor_lines = workload.lines_like_handler(per_invoke * invokes, size)
            floor: list[float] = []
            for _ in range(reps):
                cpu0, stored0 = s.cpu_s(), s.stored()
                for _ in range(invokes):
                    s.emit(per_invoke, size, tag=cls)
                if not s.drain(timeout_s=120):
                    raise RuntimeError(
                        f"{cls}: lines not all stored ({s.stored()}/{s.emitted}, drops {s.drops()})"
                    )
                lines = s.stored() - stored0
                samples.append((s.cpu_s() - cpu0) * 1e6 / lines)
                # The floor right after each sample, so both see the same load on a shared machine.
                floor += cpu_floor.cpu_us_per_line(floor_lines, reps=3)
            s.shutdown()
        res.metrics.append(
            Metric(
                key=f"cpu_us_per_line_{cls}",
                label=f"{cls} lines ({size} B), {per_invoke * invokes:,} per sample",
                unit="µs/line",
                value=Summary.of(samples),
                baseline=Summary.of(floor),
                baseline_label="in-process floor",
                goal=GOAL,
            )
        )
    res.notes.append(
        "Extension CPU = utime+stime of its process from /proc/<pid>/stat (10 ms ticks) over lines "
        "stored; it includes the listener, the HTTP client, retries and the idle thaw/next loop. "
        "The floor runs in the bench process on the same interpreter version and gzip level."
    )
    return res
