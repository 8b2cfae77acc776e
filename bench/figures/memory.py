"""Memory: the extension's peak RSS (VmHWM from /proc/<pid>/status), both builds, idle and
with Loki down while the function writes three times ``max_buffer_bytes``, so the buffer fills
and the oldest entries are dropped (and reported).

Bound under load: idle + 1.1 x ``max_buffer_bytes`` + 8 MiB. The 10% covers what entries cost
beyond their bytes (the buffer counts each entry at its encoded size plus bookkeeping); the
8 MiB covers what is held besides the buffer: one Telemetry API delivery being parsed, one
push body (≤ 1 MiB, its gzip and the encoder's temporaries) and allocator slack.
"""

from __future__ import annotations

from .. import workload
from ..context import EXTENSION_NAME, Build, Context
from ..model import Goal, Measured, Row
from ..session import session
from ..stats import Summary

LINE_SIZE = 200
LINES_PER_INVOKE = 2000
MIB = 1024 * 1024
LOAD_CONSTANT_MIB = 8.0
BUFFER_FACTOR = 1.1
IDLE_GOALS = (
    Goal(text="native ≤ 10 MiB", compare="median", threshold=10.0, builds=("native",)),
    Goal(text="python ≤ 20 MB (19.1 MiB)", compare="median", threshold=20e6 / MIB, builds=("python",)),
)


def _idle(ctx: Context, build: Build) -> float:
    with session(ctx, build) as s:
        for _ in range(5):
            s.emit(10, LINE_SIZE)
        if not s.drain(timeout_s=30):
            raise RuntimeError(f"{build.name} idle: lines not all stored ({s.stored()}/{s.emitted})")
        peak = s.peak_rss_mib()
        s.shutdown()
    return peak


def _full(ctx: Context, build: Build, buffer_bytes: int) -> tuple[float, int, list[float], int]:
    """Write 3 x ``buffer_bytes`` with Loki answering 503; (peak MiB, entries dropped,
    post-runtime ms per invoke, invokes that ended in a timeout)."""
    per_invoke = LINES_PER_INVOKE * ctx.pick(8, 10)  # 3.2 / 4 MB per invoke
    timeout_s = float(ctx.pick(1, 3))  # Lambda's default function timeout in full runs
    env = {"LOKI_MAX_BUFFER_BYTES": str(buffer_bytes)}
    with session(ctx, build, env=env, timeout_s=timeout_s) as s:
        s.rx.faults.outage(status=503)
        pid = s.extension_pid
        post: list[float] = []
        timeouts = 0
        for i in range(-(-3 * buffer_bytes // (per_invoke * LINE_SIZE))):
            res = s.lam.invoke(workload.event("full", per_invoke, LINE_SIZE, seq=i * per_invoke))
            if res.status == "timeout":
                timeouts += 1
            elif res.status != "success":
                raise RuntimeError(f"{build.name}: invoke failed: {res.status} {res.error}")
            post.append(res.post_runtime_ms)
        if s.lam.extension_pids.get(EXTENSION_NAME) != pid:
            raise RuntimeError(f"{build.name}: the environment was reset while the buffer filled")
        peak = s.peak_rss_mib()
        dropped = sum(s.drops().values()) + s.lam.records_dropped
        s.rx.faults.clear()
        s.lam.close()  # what the extension does after Loki returns is not this figure
        return peak, dropped, post, timeouts


class Memory:
    name = "memory"
    title = "Memory (peak RSS)"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        reps = ctx.pick(1, 3)
        buf = ctx.pick(1, 16) * MIB
        m = Measured(params={"reps": reps, "max_buffer_bytes": buf})
        idle = {b.name: Summary.of([_idle(ctx, b) for _ in range(reps)]) for b in ctx.builds}
        m.rows.append(Row(key="idle_peak_rss", label="idle (after 5 small invokes)", unit="MiB", values=idle,
                          goals=IDLE_GOALS))
        full: dict[str, Summary] = {}
        held: dict[str, Summary] = {}
        drops: dict[str, int] = {}
        timeouts: dict[str, int] = {}
        for b in ctx.builds:
            ctx.log(f"   Loki down, {b.name}")
            samples = [_full(ctx, b, buf)]  # one fill: 13 invokes held ~3 s each (see below)
            full[b.name] = Summary.of([x[0] for x in samples])
            drops[b.name] = min(x[1] for x in samples)
            held[b.name] = Summary.of([ms for x in samples for ms in x[2]])
            timeouts[b.name] = sum(x[3] for x in samples)
        bound = {k: v.median + BUFFER_FACTOR * buf / MIB + LOAD_CONSTANT_MIB for k, v in idle.items()}
        m.rows.append(Row(
            key="full_buffer_peak_rss",
            label=f"Loki down, {buf // MIB} MiB buffer full (3 x {buf // MIB} MiB of {LINE_SIZE} B lines "
            "written)",
            unit="MiB", values=full,
            goals=(Goal(text=f"≤ idle + {BUFFER_FACTOR:g} x buffer + {LOAD_CONSTANT_MIB:g} MiB ("
                        + ", ".join(f"{k} {v:.1f}" for k, v in bound.items()) + ")",
                        compare="median", threshold=bound),),
            note="entries dropped (reported by the extension, plus any the Telemetry API dropped): "
            + ", ".join(f"{k} {v:,}" for k, v in drops.items()),
        ))
        m.rows.append(Row(
            key="loki_down_post_runtime", label="Loki down: post-runtime time per invoke, p50", unit="ms",
            values=held, show="p50", baseline=Summary.of([ctx.pick(1, 3) * 1000.0]),
            baseline_label="the function's timeout",
            note="invokes that ended in a timeout: " + ", ".join(f"{k} {v}" for k, v in timeouts.items()),
        ))
        if not all(drops.values()):
            m.notes.append("Loki down: a build reported no drops although 3x the buffer was written; the "
                           "bound was not exercised.")
        m.notes.append("Peak RSS = VmHWM of the extension's process (the Python build's sh launcher execs "
                       "the interpreter; the native build is the process itself).")
        return m


FIGURE = Memory()
