"""Subprocess worker for the synth-scaling figure (keeps jsii out of the bench process).

Prints one JSON object: {"<n>": {"without": [s, ...], "with": [s, ...], "floor": [s, ...]},
"jsii_start_s": s}. Each sample is the wall time of building an App with one Stack of ``n``
Python functions (plus the aspect, for "with") and synthesizing it to a fresh outdir:
what `cdk synth` spends in the app. "floor" does, per function, only what any Python aspect
must: read the runtime, attach the layer, set the variables (one ``find_all``, no per-node
``visit`` callbacks, 5 jsii calls a function): the least a Python aspect that reads the
runtime can cost. jsii's start-up and a warm-up synth of each variant are paid before timing,
and the variants alternate so drift hits all of them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", required=True)
    p.add_argument("--reps", type=int, required=True)
    p.add_argument("--no-warmup", action="store_true")
    args = p.parse_args()

    t0 = time.perf_counter()
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from loki_telemetry_construct import with_loki_logging

    jsii_start = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    code_dir = work / "code"
    code_dir.mkdir()
    (code_dir / "index.py").write_text("def handler(event, context):\n    return event\n")

    from loki_telemetry_construct import LokiTelemetryLayer

    def floor(stack: cdk.Stack) -> None:
        layer = LokiTelemetryLayer(stack, "Layer")
        env = {"LOKI_URL": "http://10.0.0.5:3100/loki/api/v1/push"}
        for c in stack.node.find_all():
            if isinstance(c, lambda_.Function):
                cfn = c.node.default_child
                assert isinstance(cfn, lambda_.CfnFunction) and cfn.runtime  # what classifies it
                c.add_layers(layer)
                cfn.add_property_override("Environment.Variables", env)

    def synth_once(n: int, with_aspect: bool | str) -> float:
        outdir = tempfile.mkdtemp(dir=work)
        start = time.perf_counter()
        app = cdk.App(outdir=outdir)
        stack = cdk.Stack(app, "Bench")
        code = lambda_.Code.from_asset(str(code_dir))
        for i in range(n):
            lambda_.Function(
                stack,
                f"Fn{i}",
                runtime=lambda_.Runtime.PYTHON_3_12,
                handler="index.handler",
                code=code,
            )
        if with_aspect == "floor":
            floor(stack)
        elif with_aspect:
            with_loki_logging(stack, loki_ip="10.0.0.5")
        app.synth()
        elapsed = time.perf_counter() - start
        shutil.rmtree(outdir, ignore_errors=True)
        return elapsed

    out: dict[str, object] = {"jsii_start_s": jsii_start}
    for n in (int(s) for s in args.sizes.split(",")):
        if not args.no_warmup:
            synth_once(n, False)  # warm-up: first-use costs (class loading in jsii) are not scaling
            synth_once(n, True)
            synth_once(n, "floor")
        without: list[float] = []
        with_: list[float] = []
        floor_: list[float] = []
        for _ in range(args.reps):
            without.append(synth_once(n, False))
            with_.append(synth_once(n, True))
            floor_.append(synth_once(n, "floor"))
        out[str(n)] = {"without": without, "with": with_, "floor": floor_}
        print(f"synth n={n} done", file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
