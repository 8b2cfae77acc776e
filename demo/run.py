"""``make demo``: the sample app end to end on this machine, no AWS account, no Docker.

1. Synthesize the sample app with the real CDK CLI (which bundles the TypeScript function
   with esbuild and builds the Go one) and report which functions got a Loki layer and
   which were skipped, and why (from the cloud assembly).
2. Run it locally: S3 and DynamoDB from moto's server mode; each of the three functions
   (TypeScript, Python, Go) in the local Lambda emulator with its runtime, its code and
   layers **exactly as staged in cdk.out** and its environment from the template; one S3
   notification per upload, routed as the template's notification configuration says.
3. After each function's environment has shut down, count through Loki's query API what
   arrived: ``<Function>: delivered N/N`` per function, then the total,
   ``delivered N/N log lines to Loki at <url>``; exit 1 on any shortfall.

Ships to the local Loki-compatible receiver by default; ``LOKI_URL=<push url>`` ships to a
real Loki instead (``LOKI_QUERY_HEADERS='{"X-Scope-OrgID": "..."}'`` for its query API).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo import s3_events
from demo.local_aws import aws_client, create_resources, ensure_no_proxy_for_loopback
from demo.loki_query import LokiQuery, QueryResult, label_key
from demo.synth import FunctionInfo, SynthError, SynthesizedStack, cdk_synth, read_stack
from harness._shared.moto import MotoServer
from harness.lambda_emulator import LambdaEmulator, LambdaInitError
from harness.loki_receiver import LokiReceiver
from sample_app import loki_settings
from sample_app.stack import APP_STACK_NAME as STACK_NAME
from sample_app.stack import FUNCTIONS, SampleFunction
from sample_app.toolchain import REPO_ROOT

#: Objects put per function.
DEFAULT_UPLOADS = 20
DEFAULT_WORK_DIR = REPO_ROOT / ".demo"
#: A real Loki makes pushed entries queryable within seconds; the local receiver at once.
QUERY_WAIT_S = 60.0
#: Marks the extension's own records (drop reports, diagnostics): not the function's lines.
TYPE_LABEL = "type"
JSII_LOCATION = re.compile(r"^\S*/lib/program\.js:\d+:\d+$")
#: Lines shown per stream after the counts.
SAMPLE_LINES = 3
#: The Python function runs on this interpreter (it has boto3), whatever python3.X the template
#: names: the emulator then starts awslambdaric under it, as Lambda's Python runtime does.
PYTHON_FAMILY = "python"
#: Lambda's Node.js and OS-only runtimes have no Python: the emulator then starts the extension
#: chrooted where no interpreter is reachable, so only a static binary can run.
NO_PYTHON = "no-python"

Printer = Callable[[str], None]


def function_name(construct_id: str) -> str:
    """The name a function runs under locally (deployed, CloudFormation generates one like it)."""
    return f"{STACK_NAME}-{construct_id}"


@dataclass
class FunctionResult:
    """One function's run: what it wrote, what it logged, what Loki holds of it."""

    construct_id: str
    runtime: str
    instrumented: bool
    uploads: int = 0
    items_in_table: int = 0
    emitted: int = 0
    stored: int = 0
    by_labels: dict[str, int] = field(default_factory=dict)
    extension_records: int = 0
    invoke_errors: list[str] = field(default_factory=list)
    extension_stderr: list[str] = field(default_factory=list)
    #: How the emulator started the extension: None (beside the runtime) or "no-python".
    extension_sandbox: str | None = None
    skipped_because: str = ""
    duration_s: float = 0.0

    @property
    def lost(self) -> int:
        return max(self.emitted - self.stored, 0)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.emitted > 0
            and not self.invoke_errors
            and self.items_in_table == self.uploads
        )

    def summary_line(self) -> str:
        line = f"{self.construct_id}: delivered {self.stored}/{self.emitted} log lines ({self.runtime})"
        if not self.instrumented:
            line += " - not instrumented"
        return line


@dataclass
class DemoResult:
    """What the run did and what Loki holds; ``ok`` when every function's every line was stored."""

    loki_url: str
    functions: list[FunctionResult] = field(default_factory=list)
    #: Construct path → why the aspect skipped it (every skipped function, the CDK-managed ones too).
    skipped: dict[str, str] = field(default_factory=dict)
    instrumented: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    #: ``cdk synth`` alone (bundling included): most of a run.
    synth_s: float = 0.0

    @property
    def emitted(self) -> int:
        return sum(f.emitted for f in self.functions)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.functions)

    @property
    def lost(self) -> int:
        return sum(f.lost for f in self.functions)

    @property
    def ok(self) -> bool:
        return len(self.functions) == len(FUNCTIONS) and all(f.ok for f in self.functions)

    def function(self, construct_id: str) -> FunctionResult:
        return next(f for f in self.functions if f.construct_id == construct_id)

    def summary_line(self) -> str:
        return f"delivered {self.stored}/{self.emitted} log lines to Loki at {self.loki_url}"


def run(
    *,
    uploads: int = DEFAULT_UPLOADS,
    work_dir: Path = DEFAULT_WORK_DIR,
    loki_url: str | None = None,
    query_headers: dict[str, str] | None = None,
    receiver: LokiReceiver | None = None,
    out: Printer = print,
) -> DemoResult:
    """The whole demo; ``out`` receives every progress line.

    ``uploads``: objects put per function. ``receiver``: a running receiver to ship to
    (tests configure its limits and faults); by default the demo starts one, unless
    ``loki_url`` names a real Loki.
    """
    ensure_no_proxy_for_loopback()
    started = time.monotonic()
    start_ns = time.time_ns()
    with contextlib.ExitStack() as resources:
        if loki_url is None:
            if receiver is None:
                receiver = resources.enter_context(LokiReceiver())
            push_url = receiver.url
            out(f"== Loki: local Loki-compatible receiver at {push_url}")
        else:
            push_url = loki_url
            out(f"== Loki: {push_url} (LOKI_URL)")
        # The receiver stores a push before answering it; a real Loki needs a moment to index.
        query_wait_s = 0.0 if loki_url is None else QUERY_WAIT_S
        result = DemoResult(loki_url=push_url)

        synth_started = time.monotonic()
        stack = _synthesize(work_dir, push_url, out)
        result.synth_s = time.monotonic() - synth_started
        _report_functions(stack, result, out)

        out("== 2/3 run locally: moto (S3, DynamoDB) + Lambda emulator + the layers from cdk.out")
        moto = resources.enter_context(MotoServer(log_path=work_dir / "moto.log"))
        out(f"   moto server on {moto.url}")
        local = create_resources(moto, stack.resources, _local_names(stack))
        for logical_id, name in local.names.items():
            out(f"   created {stack.resources[logical_id]['Type']} {name}  (template: {logical_id})")
        env_base = moto.function_env()
        for spec in FUNCTIONS:
            fn = stack.function_at(f"{STACK_NAME}/{spec.construct_id}/")
            env = {
                **local.resolve_env(fn.environment),
                **env_base,
                # /var/task is read-only in Lambda: no bytecode cache lands in the staged asset.
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            result.functions.append(_run_function(stack, spec, fn, env, moto, local.names, uploads, out))

        out("== 3/3 count what Loki received, per function")
        for fr in result.functions:
            found = _count(
                push_url,
                query_headers,
                start_ns,
                function_name(fr.construct_id),
                fr.emitted,
                query_wait_s,
                out,
            )
            _record_counts(fr, found)
            _report_streams(found, out)
            _report_losses(fr, found, out)
    result.duration_s = time.monotonic() - started
    phases = ", ".join(f"{fr.construct_id} {fr.duration_s:.1f} s" for fr in result.functions)
    out(f"   (demo took {result.duration_s:.1f} s: cdk synth {result.synth_s:.1f} s, {phases})")
    for fr in result.functions:
        out(("   " if fr.ok else "!! ") + fr.summary_line())
    out(result.summary_line())
    return result


def _synthesize(work_dir: Path, push_url: str, out: Printer) -> SynthesizedStack:
    cdk_out = work_dir / "cdk.out"
    out(f"== 1/3 cdk synth (npm aws-cdk) -> {_rel(cdk_out)}   (runs sample_app/app.py; about 10 s)")
    # A fresh assembly each run: CDK reuses an existing asset.<hash> directory as it is.
    shutil.rmtree(cdk_out, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)

    def show(line: str) -> None:
        # jsii prints where in its bundled kernel a warning was raised: noise for a reader.
        if not JSII_LOCATION.match(line):
            out(f"   cdk | {line}")

    # The app reads its Loki endpoint from context: the template itself points at this run's Loki.
    cdk_synth(cdk_out, {loki_settings.CTX_LOKI_URL: push_url}, on_line=show)
    return read_stack(cdk_out, STACK_NAME)


def _report_functions(stack: SynthesizedStack, result: DemoResult, out: Printer) -> None:
    out(f"   functions in {STACK_NAME}:")
    for fn in stack.functions():
        if fn.instrumented:
            result.instrumented.append(fn.path)
            sink = {
                k: v for k, v in fn.environment.items() if k.startswith("LOKI_") or k.startswith("DISPATCH_")
            }
            out(
                f"   + {fn.path}  [{fn.runtime}]  Loki layer attached; env {json.dumps(sink, sort_keys=True)}"
            )
        else:
            why = "; ".join(_without_path(w, fn.path) for w in fn.warnings) or "no warning recorded"
            result.skipped[fn.path] = why
            out(f"   - {fn.path}  [{fn.runtime}]  skipped: {why}")


def _without_path(warning: str, path: str) -> str:
    """The aspect's warnings repeat the construct path; the listing shows it already."""
    owner = path.removesuffix("/Resource")
    for prefix in (f"Loki logging skipped {path}: ", f"Loki logging skipped {owner}: "):
        if warning.startswith(prefix):
            return warning[len(prefix) :]
    return warning


def _local_names(stack: SynthesizedStack) -> dict[str, str]:
    """A readable local name per bucket/table: ``loki-sample-<construct id>``."""
    names: dict[str, str] = {}
    for logical_id, res in stack.resources.items():
        if res["Type"] in ("AWS::S3::Bucket", "AWS::DynamoDB::Table"):
            construct_id = str(res.get("Metadata", {}).get("aws:cdk:path", logical_id)).split("/")[1]
            names[logical_id] = f"loki-sample-{construct_id.lower()}"
    return names


def _run_function(
    stack: SynthesizedStack,
    spec: SampleFunction,
    fn: FunctionInfo,
    env: dict[str, str],
    moto: MotoServer,
    names: Mapping[str, str],
    uploads: int,
    out: Printer,
) -> FunctionResult:
    started = time.monotonic()
    fr = FunctionResult(construct_id=spec.construct_id, runtime=fn.runtime, instrumented=fn.instrumented)
    if not fn.instrumented:
        fr.skipped_because = (
            "; ".join(_without_path(w, fn.path) for w in fn.warnings) or "no warning recorded"
        )
    out(f"-- {spec.construct_id} [{fn.runtime}, {fn.architecture}] as {function_name(spec.construct_id)}")
    emulator = _emulator(stack, fn, function_name(spec.construct_id), env, out)
    fr.extension_sandbox = emulator.extension_sandbox
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_close_quietly, emulator)
        emulator.start()
        where = " in a sandbox with no Python" if fr.extension_sandbox == NO_PYTHON else ""
        out(f"   initialised (extensions{where}: {', '.join(_extension_names(emulator)) or 'none'})")
        _upload_and_invoke(stack, spec, fn, moto, names, emulator, uploads, fr, out)
        shutdown = emulator.shutdown()
        out(
            f"   SHUTDOWN ({shutdown.reason}) took {shutdown.duration_ms:.0f} ms "
            f"(deadline {emulator.shutdown_timeout_s * 1000:.0f} ms); "
            f"killed: {', '.join(shutdown.killed) or 'none'}; "
            f"telemetry never delivered to the extension: {shutdown.undelivered_records}"
        )
        fr.emitted = emulator.function_records_emitted
        fr.extension_stderr = [line.rstrip() for line in emulator.extension_stderr() if line.strip()]
    fr.duration_s = time.monotonic() - started
    return fr


def _emulator(
    stack: SynthesizedStack, fn: FunctionInfo, name: str, env: dict[str, str], out: Printer
) -> LambdaEmulator:
    code_dir = stack.asset_dir(fn.logical_id)
    if code_dir is None:
        raise SynthError(f"{fn.path}: no code asset in {stack.out_dir}")
    layers = [d for d in (stack.asset_dir(lid) for lid in fn.layer_ids) if d is not None]
    props = stack.resources[fn.logical_id]["Properties"]
    out(f"   function code: {_rel(code_dir)}  ({', '.join(sorted(p.name for p in code_dir.iterdir()))})")
    for layer in layers:
        out(f"   layer:         {_rel(layer)}  ({', '.join(sorted(p.name for p in layer.iterdir()))})")
    python = fn.runtime.startswith(PYTHON_FAMILY)
    return LambdaEmulator(
        handler=fn.handler,
        code_dir=code_dir,
        layers=layers,
        env=env,
        function_name=name,
        memory_mb=int(props.get("MemorySize", 128)),
        timeout_s=float(props.get("Timeout", 3)),
        log_format=str(props.get("LoggingConfig", {}).get("LogFormat", "Text")),
        runtime=None if python else fn.runtime,
        architecture=fn.architecture,
        extension_sandbox=None if python else NO_PYTHON,
    )


def _upload_and_invoke(
    stack: SynthesizedStack,
    spec: SampleFunction,
    fn: FunctionInfo,
    moto: MotoServer,
    names: Mapping[str, str],
    emulator: LambdaEmulator,
    uploads: int,
    fr: FunctionResult,
    out: Printer,
) -> None:
    routes = s3_events.routes(stack.resources)
    bucket_id = next(lid for lid, res in stack.resources.items() if res["Type"] == "AWS::S3::Bucket")
    table_id = next(lid for lid, res in stack.resources.items() if res["Type"] == "AWS::DynamoDB::Table")
    s3 = aws_client(moto, "s3")
    region = s3.meta.region_name
    for i in range(1, uploads + 1):
        key = f"{spec.prefix}object {i:03d}.txt"
        body = f"object {i} of {uploads}\n".encode()
        response = s3.put_object(Bucket=names[bucket_id], Key=key, Body=body)
        targets = s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Put", key)
        if targets != [fn.logical_id]:
            raise SynthError(
                f"the template routes s3:ObjectCreated:Put of {key!r} to {targets}, not {fn.path}"
            )
        event = s3_events.object_created_put(
            bucket=names[bucket_id],
            key=key,
            size=len(body),
            put_response=response,
            region=region,
            sequencer=i,
        )
        invoke = emulator.invoke(event)
        fr.uploads = i
        status = (
            "ok"
            if invoke.error is None
            else f"ERROR {invoke.error.get('errorType')}: {invoke.error.get('errorMessage')}"
        )
        if invoke.error is not None:
            fr.invoke_errors.append(f"{key}: {status}")
        # Every invoke of a failing run, but only the first and last of a clean one: 60 lines say no more.
        if invoke.error is not None or i in (1, uploads):
            out(
                f"   [{i:3d}/{uploads}] put s3://{names[bucket_id]}/{key} -> invoke {invoke.request_id[:8]} "
                f"{invoke.duration_ms:6.1f} ms (+{invoke.post_runtime_ms:.1f} ms extensions) {status}"
            )
    prefix = {":p": {"S": spec.prefix}}
    items = aws_client(moto, "dynamodb").scan(
        TableName=names[table_id],
        Select="COUNT",
        FilterExpression="begins_with(#k, :p)",
        ExpressionAttributeNames={"#k": "key"},
        ExpressionAttributeValues=prefix,
    )["Count"]
    fr.items_in_table = int(items)
    out(
        f"   DynamoDB table {names[table_id]} holds {items} item(s) under {spec.prefix} "
        f"for {uploads} upload(s)"
    )


def _count(
    push_url: str,
    headers: dict[str, str] | None,
    start_ns: int,
    name: str,
    expected: int,
    wait_s: float,
    out: Printer,
) -> QueryResult:
    query = LokiQuery(push_url, headers=headers)
    selector = f'{{function="{name}"}}'
    out(f"   query {query.base}/loki/api/v1/query_range  {selector}")
    return query.wait_for(
        selector,
        start_ns - 60_000_000_000,  # entries keep the function's own timestamps: allow for clock skew
        time.time_ns() + 60_000_000_000,
        lambda found: found.count(lambda labels: TYPE_LABEL not in labels) >= expected,
        wait_s,
    )


def _record_counts(fr: FunctionResult, found: QueryResult) -> None:
    fr.stored = found.count(lambda labels: TYPE_LABEL not in labels)
    fr.extension_records = found.count(lambda labels: TYPE_LABEL in labels)
    fr.by_labels = {key: len(values) for key, values in sorted(found.streams.items())}


def _report_streams(found: QueryResult, out: Printer) -> None:
    for key, values in sorted(found.streams.items()):
        out(f"   {len(values):6d} lines  {key}")
        for _, line in sorted(values)[:SAMPLE_LINES]:
            out(f"            | {_clip(line)}")
        if len(values) > SAMPLE_LINES:
            out(f"            | ... {len(values) - SAMPLE_LINES} more")


def _report_losses(fr: FunctionResult, found: QueryResult, out: Printer) -> None:
    for key, values in sorted(found.streams.items()):
        if TYPE_LABEL in found.labels[key]:
            for _, line in values:
                out(f"   extension report {label_key(found.labels[key])}: {line}")
    if not fr.instrumented:
        out(
            f"!! {fr.construct_id}: no Loki layer, so none of its {fr.emitted} lines can arrive: "
            + fr.skipped_because
        )
    elif fr.lost:
        out(f"!! {fr.construct_id}: {fr.lost} of {fr.emitted} function log lines are missing from Loki")
        for line in fr.extension_stderr[-20:]:
            out(f"   extension stderr: {line}")
    if fr.stored > fr.emitted:
        out(
            f"!! {fr.construct_id}: Loki holds {fr.stored - fr.emitted} more lines than were emitted "
            "(earlier runs?)"
        )
    for error in fr.invoke_errors:
        out(f"!! {fr.construct_id}: invoke failed: {error}")
    if fr.items_in_table != fr.uploads:
        out(f"!! {fr.construct_id}: DynamoDB holds {fr.items_in_table} items for {fr.uploads} uploads")


def _extension_names(emulator: LambdaEmulator) -> list[str]:
    init = emulator.init_result
    return list(init.extensions) if init is not None else []


def _close_quietly(emulator: LambdaEmulator) -> None:
    with contextlib.suppress(Exception):
        emulator.close()


def _clip(line: str, width: int = 150) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _query_headers_from_env() -> dict[str, str] | None:
    raw = os.environ.get("LOKI_QUERY_HEADERS")
    if not raw:
        return None
    value: Any = json.loads(raw)
    return {str(k): str(v) for k, v in value.items()}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--uploads", type=int, default=DEFAULT_UPLOADS, help="objects to put per function (default 20)"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="cdk.out and logs (default .demo/)"
    )
    parser.add_argument(
        "--loki-url",
        default=os.environ.get("LOKI_URL") or None,
        help="a real Loki's push URL (default: env LOKI_URL)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        result = run(
            uploads=args.uploads,
            work_dir=args.work_dir.resolve(),
            loki_url=args.loki_url,
            query_headers=_query_headers_from_env(),
            out=out,
        )
    except (SynthError, LambdaInitError, OSError, ValueError) as exc:
        # Everything started so far has been stopped by run(); say what broke, not a traceback.
        out(f"!! demo failed: {type(exc).__name__}: {exc}")
        return 2
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
