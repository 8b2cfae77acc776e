"""Figure 7: synthesis time of a stack of N Python functions, with vs without the aspect.

Real aws-cdk-lib synthesis in a subprocess (see ``_synth_worker``); jsii start-up and
one warm-up synth per variant are excluded so the ratio reflects the aspect, not
whichever variant happened to run first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .context import Context
from .model import FigureResult, Goal, Metric
from .stats import Summary

NAME = "synth_scaling"
TITLE = "Synth scaling"
GOAL = Goal(text="≤ 1.2x without the aspect", compare="ratio", threshold=1.2)


def run(ctx: Context) -> FigureResult:
    sizes = [2] if ctx.smoke else [50, 200]
    reps = ctx.pick(1, 5)
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    env["PATH"] = f"{ctx.repo / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
    argv = [sys.executable, "-m", "bench._synth_worker", "--sizes", ",".join(map(str, sizes))]
    proc = subprocess.run(
        [*argv, "--reps", str(reps)],
        cwd=ctx.repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"synth worker failed ({proc.returncode}): {last}\n{proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    res = FigureResult(name=NAME, title=TITLE, params={"sizes": sizes, "reps": reps})
    for n in sizes:
        samples = data[str(n)]
        res.metrics.append(
            Metric(
                key=f"synth_{n}_functions",
                label=f"synth, {n} Python functions, with aspect",
                unit="s",
                value=Summary.of(samples["with"]),
                baseline=Summary.of(samples["without"]),
                baseline_label="same stack without the aspect",
                goal=GOAL,
            )
        )
    res.notes.append(
        f"Wall time of constructing the app and `app.synth()` in one warm jsii process "
        f"(jsii start-up {data['jsii_start_s']:.1f} s excluded; one warm-up synth per variant); "
        f"the variants alternate, {reps} samples each."
    )
    return res
