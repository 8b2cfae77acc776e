"""Figure 4: extension peak RSS (VmHWM from /proc/<pid>/status) idle, under a sustained
burst that ships normally, and under a burst while Loki is down, when the buffer fills
to ``max_buffer_bytes`` and the oldest entries are dropped.

Goal: idle <= 20 MB; under load <= idle + max_buffer_bytes + LOAD_CONSTANT_MIB, the
stated constant covering what is held besides the buffer: one Telemetry API delivery
being parsed (<= 2 x maxBytes of JSON and its objects), one push body (<= 1 MiB JSON,
its gzip and the encoder's temporaries) and interpreter arenas not returned to the OS.
The full run writes with two buffer sizes, so the growth of RSS per MiB of buffer is
measured too: it is 1.0 when ``max_buffer_bytes`` accounts for what entries really cost.
"""

from __future__ import annotations

from .context import Context
from .model import FigureResult, Goal, Metric
from .session import session
from .stats import Summary

NAME = "memory"
TITLE = "Memory (peak RSS)"
IDLE_GOAL = Goal(text="<= 20 MB (19.1 MiB) idle", compare="median", threshold=20e6 / (1024 * 1024))
LOAD_CONSTANT_MIB = 8.0
LINE_SIZE = 200
LINES_PER_INVOKE = 2000
MIB = 1024 * 1024


def _idle(ctx: Context) -> float:
    with session(ctx) as s:
        for _ in range(5):
            s.emit(10, LINE_SIZE)
        if not s.drain(timeout_s=30):
            raise RuntimeError(f"idle: lines not all stored ({s.stored()}/{s.emitted}, drops {s.drops()})")
        peak = s.peak_rss_mib()
        s.shutdown()
    return peak


def _burst(
    ctx: Context, buffer_bytes: int, total_bytes: int, outage: bool
) -> tuple[float, int, dict[str, int]]:
    """Peak RSS after writing ``total_bytes`` of lines; returns (peak MiB, emitted, drops)."""
    env = {"LOKI_MAX_BUFFER_BYTES": str(buffer_bytes)}
    if not outage:
        # Ship each invoke's lines before the freeze: in batch mode a frozen extension cannot
        # push, so a burst bigger than the buffer between thaws would drop (see the fault figures).
        env["LOKI_SHIP_BEFORE_FREEZE"] = "true"
    with session(ctx, env=env) as s:
        s.keep_results = False
        if outage:
            s.rx.faults.outage(status=503)
        invokes = max(1, total_bytes // (LINES_PER_INVOKE * LINE_SIZE))
        for _ in range(invokes):
            s.emit(LINES_PER_INVOKE, LINE_SIZE)
        if not outage and not s.drain(timeout_s=120):
            raise RuntimeError(f"burst: lines not all stored ({s.stored()}/{s.emitted}, drops {s.drops()})")
        peak = s.peak_rss_mib()
        s.rx.faults.clear()
        s.shutdown()
        return peak, s.emitted, s.drops()


def run(ctx: Context) -> FigureResult:
    reps = ctx.pick(1, 3)
    buffers = [1 * MIB] if ctx.smoke else [4 * MIB, 16 * MIB]
    res = FigureResult(name=NAME, title=TITLE, params={"reps": reps, "max_buffer_bytes": buffers})
    idle = Summary.of([_idle(ctx) for _ in range(reps)])
    res.metrics.append(Metric(key="idle_peak_rss", label="idle (after 5 small invokes)", unit="MiB",
                              value=idle, goal=IDLE_GOAL))

    ship_bytes = ctx.pick(2, 20) * MIB
    shipped = Summary.of([_burst(ctx, buffers[0], ship_bytes, outage=False)[0] for _ in range(reps)])
    thr = idle.median + buffers[0] / MIB + LOAD_CONSTANT_MIB
    res.metrics.append(
        Metric(
            key="burst_peak_rss",
            label=f"sustained burst, Loki up ({ship_bytes // MIB} MiB of {LINE_SIZE} B lines, "
            f"ship-before-freeze, max_buffer_bytes {buffers[0] // MIB} MiB)",
            unit="MiB",
            value=shipped,
            baseline=idle,
            baseline_label="idle",
            goal=Goal(text=f"<= idle + buffer + {LOAD_CONSTANT_MIB:g} MiB = {thr:.1f}", compare="median",
                      threshold=thr),
        )
    )
    full_medians: list[float] = []
    for buf in buffers:
        peaks: list[float] = []
        dropped = 0
        for _ in range(reps):
            peak, _emitted, drops = _burst(ctx, buf, 3 * buf, outage=True)
            peaks.append(peak)
            dropped = max(dropped, drops.get("buffer_full", 0))
        thr = idle.median + buf / MIB + LOAD_CONSTANT_MIB
        full_medians.append(Summary.of(peaks).median)
        res.metrics.append(
            Metric(
                key=f"full_buffer_peak_rss_{buf // MIB}mib",
                label=f"Loki down, buffer full (3x{buf // MIB} MiB written, "
                f"max_buffer_bytes {buf // MIB} MiB)",
                unit="MiB",
                value=Summary.of(peaks),
                baseline=idle,
                baseline_label="idle",
                goal=Goal(text=f"<= idle + buffer + {LOAD_CONSTANT_MIB:g} MiB = {thr:.1f}", compare="median",
                          threshold=thr),
                note=f"{dropped:,} oldest entries dropped and reported (buffer_full)",
            )
        )
        if dropped == 0:
            res.notes.append(f"Loki down with a {buf // MIB} MiB buffer: no buffer_full drops were reported "
                             "although 3x the buffer was written; the bound was not exercised.")
    if len(buffers) == 2:
        slope = (full_medians[1] - full_medians[0]) / ((buffers[1] - buffers[0]) / MIB)
        res.metrics.append(
            Metric(
                key="rss_per_buffer_mib",
                label=f"RSS growth per MiB of max_buffer_bytes ({buffers[0] // MIB} → "
                f"{buffers[1] // MIB} MiB, {LINE_SIZE} B lines)",
                unit="MiB/MiB",
                value=Summary.of([slope]),
                goal=Goal(text="<= 1.0 (the buffer bound holds)", compare="median", threshold=1.0),
            )
        )
    res.notes.append(
        "Peak RSS = VmHWM of the extension's python process (the sh launcher execs it). "
        f"The load constant {LOAD_CONSTANT_MIB:g} MiB covers one Telemetry delivery being parsed, one "
        "push body with its gzip and encoder temporaries, and arenas not returned to the OS."
    )
    return res
