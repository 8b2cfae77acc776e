"""``python -m harness.loki_receiver --port 3100 [--mode 3|2.9|2.7]``: run until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .limits import MODES
from .receiver import LokiReceiver


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.loki_receiver", description=__doc__)
    p.add_argument(
        "--port", type=int, default=3100, help="TCP port on 127.0.0.1 (0 = any free port)"
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--mode", choices=MODES, default="3",
                   help="the Loki version to behave like: 3 (3.4, default), 2.9 or 2.7")
    p.add_argument("--loki2", action="store_true",
                   help="refuse structured metadata with 400 (allow_structured_metadata: false)")
    p.add_argument("--require-tenant", action="store_true", help="401 without X-Scope-OrgID; isolate tenants")
    p.add_argument("--basic-auth", metavar="USER:PASSWORD", help="demand this basic auth (401 otherwise)")
    p.add_argument("--bearer-token", metavar="TOKEN", help="demand this bearer token (401 otherwise)")
    p.add_argument("--max-line-size", type=int, default=None,
                   help="bytes (default: the mode's, 262144 on 3.x, none on 2.x)")
    p.add_argument("--rate-limit", action="store_true", help="enforce 4 MB/s, 6 MB burst per tenant (429)")
    p.add_argument("--quiet", action="store_true", help="do not print a line per push")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    basic = None
    if args.basic_auth:
        user, sep, password = args.basic_auth.partition(":")
        if not sep:
            print("--basic-auth must be USER:PASSWORD", file=sys.stderr)
            return 2
        basic = (user, password)
    receiver = LokiReceiver(
        port=args.port,
        host=args.host,
        mode=args.mode,
        structured_metadata=not args.loki2,
        require_tenant=args.require_tenant,
        basic_auth=basic,
        bearer_token=args.bearer_token,
        max_line_size=args.max_line_size,
        rate_limit=args.rate_limit,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with receiver:
        version = "3.x" if args.mode == "3" else args.mode
        mode = f"Loki {version} mode" + (", no structured metadata" if args.loki2 else "")
        print(f"loki receiver ({mode}): push {receiver.url}, query {receiver.base_url}", flush=True)
        seen = 0
        while not stop.is_set():
            # Print push outcomes as they arrive; the wait doubles as the shutdown poll.
            if receiver.wait_for_requests(seen + 1, timeout=0.5) or stop.is_set():
                pushes = receiver.push_requests()
                if not args.quiet:
                    for r in pushes[seen:]:
                        note = f" {r.error[:200]}" if r.error else ""
                        counts = f"{r.entries_accepted}/{r.entries_received}"
                        print(f"push {r.status} entries {counts}{note}", flush=True)
                seen = len(pushes)
        print(f"stored {receiver.count()} entries", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
