"""CPU per shipped line: user+sys of the extension process (from /proc) over lines stored in
Loki, for short, typical and long lines, both builds, against the in-process floor
(``cpu_floor``: parse the same telemetry JSON, build the push body, gzip, in the bench process).

Default flush settings. Each sample: read the extension's CPU, run invokes that write the
lines, thaw the environment until every line is stored, read the CPU again.
"""

from __future__ import annotations

from .. import cpu_floor, workload
from ..context import Build, Context
from ..model import Goal, Measured, Row
from ..session import session
from ..stats import Summary

RATIO_GOAL = Goal(text="native ≤ 0.5x python", compare="native_ratio", threshold=0.5)
#: Lines per invoke by size class (each invoke's output 200-800 KB). With 25 invokes a sample
#: costs the extension about 250-350 ms of CPU, so the 10 ms ticks of /proc round by under 4%.
PER_INVOKE = {"short": 5000, "typical": 2000, "long": 100}
MIB = 1024 * 1024


def _samples(ctx: Context, build: Build, cls: str, size: int, invokes: int, reps: int) -> list[float]:
    per_invoke = PER_INVOKE[cls]
    out: list[float] = []
    # A buffer that holds the whole sample: this figure is CPU per line, not the drop policy.
    with session(ctx, build, env={"LOKI_MAX_BUFFER_BYTES": str(64 * MIB)}) as s:
        if not ctx.smoke:  # warm-up: first connection, lazy initialisation
            s.emit(per_invoke, size, tag="warm")
            if not s.drain(timeout_s=60):
                raise RuntimeError(f"{build.name} {cls}: warm-up lines not all stored "
                                   f"({s.stored()}/{s.emitted}, drops {s.drops()})")
        for _ in range(reps):
            cpu0, stored0 = s.cpu_s(), s.stored()
            for _ in range(invokes):
                s.emit(per_invoke, size, tag=cls)
            if not s.drain(timeout_s=120):
                raise RuntimeError(f"{build.name} {cls}: lines not all stored "
                                   f"({s.stored()}/{s.emitted}, drops {s.drops()})")
            out.append((s.cpu_s() - cpu0) * 1e6 / (s.stored() - stored0))
        s.shutdown()
    return out


class CpuPerLine:
    name = "cpu_per_line"
    title = "CPU per shipped line"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        reps = ctx.pick(1, 3)
        invokes = ctx.pick(1, 25)
        classes = {"typical": workload.LINE_SIZES["typical"]} if smoke else workload.LINE_SIZES
        m = Measured(params={"reps": reps, "invokes_per_sample": invokes})
        for cls, size in classes.items():
            values: dict[str, Summary] = {}
            for b in ctx.builds:
                ctx.log(f"   {cls} {b.name}")
                values[b.name] = Summary.of(_samples(ctx, b, cls, size, invokes, reps))
            floor_lines = workload.lines_like_handler(PER_INVOKE[cls] * invokes, size)
            floor = cpu_floor.cpu_us_per_line(floor_lines, reps=ctx.pick(1, 5))
            m.rows.append(Row(key=f"cpu_us_per_line_{cls}",
                              label=f"{cls} lines ({size} B), {PER_INVOKE[cls] * invokes:,} per sample",
                              unit="µs/line", values=values, baseline=Summary.of(floor),
                              baseline_label="in-process Python floor", goals=(RATIO_GOAL,)))
        m.notes.append(
            "Extension CPU = utime+stime of its process from /proc/<pid>/stat (10 ms ticks) over lines "
            "stored; it includes the listener, the HTTP client and the idle thaw/next loop. The floor "
            "(parse, build, gzip in one Python process, no I/O) is what any Python shipper must spend."
        )
        return m


FIGURE = CpuPerLine()
