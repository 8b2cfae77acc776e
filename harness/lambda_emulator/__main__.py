"""``python -m harness.lambda_emulator``: run a handler with layers locally.

Example::

    python -m harness.lambda_emulator --handler app.handler --code-dir fn \\
        --layer extension --env LOKI_URL=http://127.0.0.1:3100/loki/api/v1/push \\
        --event '{"key": "value"}' --invokes 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from ._emulator import LOG_FORMATS, SHUTDOWN_REASONS, LambdaEmulator
from ._results import LambdaInitError
from ._runtimes import RUNTIMES
from ._sandbox import ARCHITECTURES, SANDBOXES


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.lambda_emulator", description=__doc__.split("\n")[0])
    p.add_argument("--handler", required=True, help="module.function, e.g. app.handler")
    p.add_argument("--code-dir", required=True, type=Path, help="the function's code (LAMBDA_TASK_ROOT)")
    p.add_argument("--layer", action="append", default=[], type=Path, help="a layer root (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="repeatable")
    p.add_argument("--event", default="{}", help="JSON event, or @file.json")
    p.add_argument("--invokes", type=int, default=1)
    p.add_argument("--function-name", default="test-function")
    p.add_argument("--memory-mb", type=int, default=128)
    p.add_argument("--timeout-s", type=float, default=3.0)
    p.add_argument("--log-format", choices=LOG_FORMATS, default="Text")
    p.add_argument("--extension-python", help="interpreter that `python3` means for extensions")
    p.add_argument("--shutdown-reason", choices=SHUTDOWN_REASONS, default="spindown")
    p.add_argument("--runtime", choices=RUNTIMES, help="Lambda runtime name (default: this Python)")
    p.add_argument("--architecture", choices=ARCHITECTURES, default="x86_64")
    p.add_argument("--extension-sandbox", choices=SANDBOXES, help="run extensions with no Python reachable")
    p.add_argument("--managed-instances", action="store_true", help="Lambda Managed Instances mode")
    p.add_argument("--max-concurrency", type=int, help="runtime workers (with --managed-instances)")
    return p.parse_args(argv)


def _show(what: str, obj: Any) -> None:
    doc = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) and not isinstance(obj, type) else obj
    print(json.dumps({what: doc}, default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"--env expects NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        env[name] = value
    event_text = Path(args.event[1:]).read_text() if args.event.startswith("@") else args.event
    event = json.loads(event_text)
    lam = LambdaEmulator(
        handler=args.handler,
        code_dir=args.code_dir,
        layers=args.layer,
        env=env,
        function_name=args.function_name,
        memory_mb=args.memory_mb,
        timeout_s=args.timeout_s,
        log_format=args.log_format,
        extension_python=args.extension_python,
        runtime=args.runtime,
        architecture=args.architecture,
        extension_sandbox=args.extension_sandbox,
        managed_instances=args.managed_instances,
        max_concurrency=args.max_concurrency,
    )
    try:
        try:
            _show("init", lam.start())
        except LambdaInitError as err:
            _show("init_error", {"errorType": err.error_type, "message": err.message, "stderr": err.stderr})
            return 1
        for _ in range(args.invokes):
            _show("invoke", lam.invoke(event))
        _show("shutdown", lam.shutdown(args.shutdown_reason))
        stats = dataclasses.asdict(lam.stats)
        stats["deliveries"] = len(stats["deliveries"])
        _show("stats", stats)
        _show("extension_stderr", lam.extension_stderr())
        return 0
    finally:
        lam.close()


if __name__ == "__main__":
    sys.exit(main())
