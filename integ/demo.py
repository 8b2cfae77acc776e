"""``make demo``: the sample app end to end on this machine, no AWS account, no Docker.

1. Synthesize the sample app with the real CDK CLI and report which functions got the
   Loki layer and which were skipped, and why (from the cloud assembly).
2. Run it locally: S3 and DynamoDB from moto's server mode, the ``ingest`` function in the
   local Lambda emulator with the layer and code **exactly as staged in cdk.out** and its
   environment from the template, one S3 notification per upload.
3. SHUTDOWN the environment, then count through Loki's query API what arrived, by label
   set, ending with ``delivered N/N log lines to Loki at <url>``; exit 1 if any line is missing.

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

from harness.lambda_emulator import LambdaEmulator, LambdaInitError
from harness.loki_receiver import LokiReceiver
from integ import loki_settings, s3_events
from integ.local_aws import MotoServer, create_resources, ensure_no_proxy_for_loopback
from integ.loki_query import LokiQuery, QueryResult, label_key
from integ.sample_stack import APP_STACK_NAME as STACK_NAME
from integ.synth import REPO_ROOT, FunctionInfo, SynthError, SynthesizedStack, cdk_synth, read_stack

DEFAULT_UPLOADS = 20
DEFAULT_WORK_DIR = REPO_ROOT / ".demo"
#: Construct path of the function the demo runs (the sample's Python function).
INGEST_PATH = f"{STACK_NAME}/Ingest/"
#: The name it runs under locally (deployed, CloudFormation would generate one like it).
INGEST_FUNCTION_NAME = f"{STACK_NAME}-Ingest"
#: A real Loki makes pushed entries queryable within seconds; the local receiver at once.
QUERY_WAIT_S = 60.0
#: Marks the extension's own records (drop reports, diagnostics): not the function's lines.
TYPE_LABEL = "type"
JSII_LOCATION = re.compile(r"^\S*/lib/program\.js:\d+:\d+$")
#: Lines shown per stream after the counts.
SAMPLE_LINES = 4

Printer = Callable[[str], None]


@dataclass
class DemoResult:
    """What the run did and what Loki holds; ``ok`` when every emitted line was stored."""

    loki_url: str
    uploads: int = 0
    items_in_table: int = 0
    emitted: int = 0
    stored: int = 0
    by_labels: dict[str, int] = field(default_factory=dict)
    instrumented: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    extension_records: int = 0
    invoke_errors: list[str] = field(default_factory=list)
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

    ``receiver``: a running receiver to ship to (tests configure its limits and faults);
    by default the demo starts one, unless ``loki_url`` names a real Loki.
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

        stack = _synthesize(work_dir, push_url, out)
        ingest = stack.function_at(INGEST_PATH)
        _report_functions(stack, result, out)

        out("== 2/3 run locally: moto (S3, DynamoDB) + Lambda emulator + the layer from cdk.out")
        moto = resources.enter_context(MotoServer(log_path=work_dir / "moto.log"))
        out(f"   moto server on {moto.url}")
        local = create_resources(moto, stack.resources, _local_names(stack))
        for logical_id, name in local.names.items():
            out(f"   created {stack.resources[logical_id]['Type']} {name}  (template: {logical_id})")
        env = {
            **local.resolve_env(ingest.environment),
            **moto.function_env(),
            # /var/task is read-only in Lambda: no bytecode cache lands in the staged asset.
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        emulator = _emulator(stack, ingest, env, out)
        resources.callback(_close_quietly, emulator)
        emulator.start()
        out(f"   environment initialised (extensions: {', '.join(_extension_names(emulator)) or 'none'})")

        _upload_and_invoke(stack, ingest, moto, local.names, emulator, uploads, result, out)

        out("== 3/3 SHUTDOWN and count what Loki received")
        shutdown = emulator.shutdown()
        out(
            f"   SHUTDOWN ({shutdown.reason}) took {shutdown.duration_ms:.0f} ms "
            f"(deadline {emulator.shutdown_timeout_s * 1000:.0f} ms); "
            f"killed: {', '.join(shutdown.killed) or 'none'}; "
            f"telemetry never delivered to the extension: {shutdown.undelivered_records}"
        )
        result.emitted = _function_lines_emitted(emulator)
        found = _count(push_url, query_headers, start_ns, result.emitted, query_wait_s, out)
        result.stored = found.count(lambda labels: TYPE_LABEL not in labels)
        result.extension_records = found.count(lambda labels: TYPE_LABEL in labels)
        result.by_labels = {key: len(values) for key, values in sorted(found.streams.items())}
        for key, values in sorted(found.streams.items()):
            out(f"   {len(values):6d} lines  {key}")
            for _, line in sorted(values)[:SAMPLE_LINES]:
                out(f"            | {_clip(line)}")
            if len(values) > SAMPLE_LINES:
                out(f"            | ... {len(values) - SAMPLE_LINES} more")
        _report_losses(found, result, emulator, out)
    result.duration_s = time.monotonic() - started
    out(f"   (demo took {result.duration_s:.1f} s)")
    out(result.summary_line())
    return result


def _synthesize(work_dir: Path, push_url: str, out: Printer) -> SynthesizedStack:
    cdk_out = work_dir / "cdk.out"
    out(f"== 1/3 cdk synth (npm aws-cdk) -> {_rel(cdk_out)}   (runs integ/app.py; about 10 s)")
    # A fresh assembly each run: CDK reuses an existing asset.<hash> directory as it is.
    shutil.rmtree(cdk_out, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)

    # The app reads its Loki endpoint from context: the template itself points at this run's Loki.
    def show(line: str) -> None:
        # jsii prints where in its bundled kernel a warning was raised: noise for a reader.
        if not JSII_LOCATION.match(line):
            out(f"   cdk | {line}")

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


def _emulator(stack: SynthesizedStack, fn: FunctionInfo, env: dict[str, str], out: Printer) -> LambdaEmulator:
    code_dir = stack.asset_dir(fn.logical_id)
    if code_dir is None:
        raise RuntimeError(f"{fn.path}: no code asset in {stack.out_dir}")
    layers = [d for d in (stack.asset_dir(lid) for lid in fn.layer_ids) if d is not None]
    props = stack.resources[fn.logical_id]["Properties"]
    out(f"   function code: {_rel(code_dir)}")
    for layer in layers:
        out(f"   layer:         {_rel(layer)}  ({', '.join(sorted(p.name for p in layer.iterdir()))})")
    return LambdaEmulator(
        handler=fn.handler,
        code_dir=code_dir,
        layers=layers,
        env=env,
        function_name=INGEST_FUNCTION_NAME,
        memory_mb=int(props.get("MemorySize", 128)),
        timeout_s=float(props.get("Timeout", 3)),
        log_format=str(props.get("LoggingConfig", {}).get("LogFormat", "Text")),
    )


def _upload_and_invoke(
    stack: SynthesizedStack,
    ingest: FunctionInfo,
    moto: MotoServer,
    names: Mapping[str, str],
    emulator: LambdaEmulator,
    uploads: int,
    result: DemoResult,
    out: Printer,
) -> None:
    routes = s3_events.routes(stack.resources)
    bucket_id = next(lid for lid, res in stack.resources.items() if res["Type"] == "AWS::S3::Bucket")
    table_id = next(lid for lid, res in stack.resources.items() if res["Type"] == "AWS::DynamoDB::Table")
    s3 = moto.client("s3")
    for i in range(1, uploads + 1):
        key = f"uploads/object {i:03d}.txt"
        body = f"object {i} of {uploads}\n".encode()
        response = s3.put_object(Bucket=names[bucket_id], Key=key, Body=body)
        targets = s3_events.targets(routes, bucket_id, "s3:ObjectCreated:Put", key)
        if ingest.logical_id not in targets:
            raise RuntimeError(f"the template routes s3:ObjectCreated:Put to {targets}, not {ingest.path}")
        event = s3_events.object_created_put(
            bucket=names[bucket_id],
            key=key,
            size=len(body),
            put_response=response,
            region=moto.client("s3").meta.region_name,
            sequencer=i,
        )
        invoke = emulator.invoke(event)
        result.uploads = i
        status = (
            "ok"
            if invoke.error is None
            else f"ERROR {invoke.error.get('errorType')}: {invoke.error.get('errorMessage')}"
        )
        if invoke.error is not None:
            result.invoke_errors.append(f"{key}: {status}")
        out(
            f"   [{i:3d}/{uploads}] put s3://{names[bucket_id]}/{key} -> invoke {invoke.request_id[:8]} "
            f"{invoke.duration_ms:6.1f} ms (+{invoke.post_runtime_ms:.1f} ms extensions) {status}"
        )
    items = moto.client("dynamodb").scan(TableName=names[table_id], Select="COUNT")["Count"]
    result.items_in_table = int(items)
    out(f"   DynamoDB table {names[table_id]} holds {items} item(s) for {uploads} upload(s)")


def _count(
    push_url: str, headers: dict[str, str] | None, start_ns: int, expected: int, wait_s: float, out: Printer
) -> QueryResult:
    query = LokiQuery(push_url, headers=headers)
    selector = f'{{function="{INGEST_FUNCTION_NAME}"}}'
    out(f"   query {query.base}/loki/api/v1/query_range  {selector}")
    return query.wait_for(
        selector,
        start_ns - 60_000_000_000,  # entries keep the function's own timestamps: allow for clock skew
        time.time_ns() + 60_000_000_000,
        lambda found: found.count(lambda labels: TYPE_LABEL not in labels) >= expected,
        wait_s,
    )


def _report_losses(found: QueryResult, result: DemoResult, emulator: LambdaEmulator, out: Printer) -> None:
    for key, values in sorted(found.streams.items()):
        if TYPE_LABEL in found.labels[key]:
            for _, line in values:
                out(f"   extension report {label_key(found.labels[key])}: {line}")
    if result.lost:
        out(f"!! {result.lost} of {result.emitted} function log lines are missing from Loki")
        for line in _extension_stderr(emulator)[-20:]:
            out(f"   extension stderr: {line}")
    if result.stored > result.emitted:
        out(f"!! Loki holds {result.stored - result.emitted} more lines than were emitted (earlier runs?)")
    for error in result.invoke_errors:
        out(f"!! invoke failed: {error}")
    if result.items_in_table != result.uploads:
        out(f"!! DynamoDB holds {result.items_in_table} items for {result.uploads} uploads")


# --- the few places that read the emulator's counters ------------------------------------
def _function_lines_emitted(emulator: LambdaEmulator) -> int:
    return emulator.function_records_emitted


def _extension_names(emulator: LambdaEmulator) -> list[str]:
    init = emulator.init_result
    return list(init.extensions) if init is not None else []


def _extension_stderr(emulator: LambdaEmulator) -> list[str]:
    return [line.rstrip() for line in emulator.extension_stderr() if line.strip()]


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
    parser = argparse.ArgumentParser(prog="python -m integ.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=DEFAULT_UPLOADS, help="objects to put (default 20)")
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
