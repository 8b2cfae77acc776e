"""Synth scaling: synthesis time of a stack of N Python functions, with vs without the aspect.

Real aws-cdk-lib synthesis in a subprocess (``bench/_synth_worker.py``); jsii start-up and one
warm-up synth per variant are excluded so the ratio reflects the aspect, not whichever variant
happened to run first. The value does not depend on the extension's build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ..context import Context
from ..model import ANY, Goal, Measured, Row
from ..stats import Summary

GOAL = Goal(text="≤ 1.2x without the aspect", compare="vs_baseline", threshold=1.2)


class SynthScaling:
    name = "synth_scaling"
    title = "Synth scaling"

    def measure(self, ctx: Context, smoke: bool) -> Measured:
        sizes = [1] if smoke else [1, 50, 200]
        reps = ctx.pick(1, 5)
        env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
        env["PATH"] = f"{ctx.repo / 'node_modules' / '.bin'}{os.pathsep}{env.get('PATH', '')}"
        argv = [sys.executable, "-m", "bench._synth_worker", "--sizes", ",".join(map(str, sizes)),
                "--reps", str(reps)]
        if smoke:
            argv.append("--no-warmup")
        proc = subprocess.run(argv, cwd=ctx.repo, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"synth worker failed ({proc.returncode}): {proc.stderr[-2000:]}")
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        m = Measured(params={"sizes": sizes, "reps": reps})
        for n in sizes:
            samples = data[str(n)]
            m.rows.append(Row(key=f"synth_{n}_functions", label=f"synth, {n} Python function(s), with aspect",
                              unit="s", values={ANY: Summary.of(samples["with"])},
                              baseline=Summary.of(samples["without"]),
                              baseline_label="same stack without the aspect", goals=(GOAL,)))
        last = str(sizes[-1])
        m.rows.append(Row(key=f"synth_{last}_floor",
                          label=f"synth, {last} Python function(s), the least any Python aspect does",
                          unit="s", values={ANY: Summary.of(data[last]["floor"])},
                          baseline=Summary.of(data[last]["without"]),
                          baseline_label="same stack without the aspect"))
        m.notes.append(
            f"Wall time of constructing the app and `app.synth()` in one warm jsii process (jsii start-up "
            f"{data['jsii_start_s']:.1f} s excluded; one warm-up synth per variant in full runs); the "
            f"variants alternate, {reps} samples each. The ratio column of these rows is with / without. "
            "The floor row reads each function's runtime, attaches the layer and sets the variables with "
            "one find_all and 5 jsii calls per function, no per-node visit callbacks: what any Python aspect "
            "that reads the runtime must do, so it bounds what the goal can get."
        )
        return m


FIGURE = SynthScaling()
