"""One scriptable Lambda handler for the end-to-end tests.

The event is a list of steps, so each test states exactly what the function writes
and the test can compute the expected Loki lines itself:

- ``{"print": [str, ...]}``: ``print`` each string (a string with newlines is a
  multi-line print: Lambda turns it into one record per line).
- ``{"stderr": [str, ...]}``: the same on stderr.
- ``{"log": [str, ...], "level": "INFO"}``: one ``logging`` call per string (a
  multi-line message is one record where the runtime frames its logs).
- ``{"burst": {"prefix": str, "count": int, "width": int}}``: ``count`` prints of
  ``f"{prefix}-{i:06d} "`` padded with dots to ``width`` characters, generated here so
  a 100-line invoke does not need a 100-line event.
- ``{"huge": {"prefix": str, "size": int, "char": str}}``: one print of ``prefix``
  followed by ``char`` repeated until the line is ``size`` characters long.
- ``{"hold": port}``: connect to 127.0.0.1:port, announce the request id and block
  until the test writes a byte or closes (bounded by the remaining invoke time).
  Tests use it to keep the environment thawed while they observe the extension.
- ``{"hang": true}``: block forever, so the invoke hits the function timeout (Lambda
  then resets the environment: SHUTDOWN with reason "timeout").
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from typing import Any

logger = logging.getLogger("e2e")
logger.setLevel(logging.DEBUG)


def _burst(prefix: str, count: int, width: int) -> int:
    for i in range(count):
        head = f"{prefix}-{i:06d} "
        print(head + "." * max(0, width - len(head)))
    return count


def _hold(port: int, context: Any) -> None:
    remaining_s = max(0.1, context.get_remaining_time_in_millis() / 1000 - 0.2)
    with socket.create_connection(("127.0.0.1", port), timeout=remaining_s) as conn:
        conn.sendall(context.aws_request_id.encode() + b"\n")
        conn.recv(1)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    for step in event.get("steps", []):
        if "print" in step:
            for text in step["print"]:
                print(text)
        elif "stderr" in step:
            for text in step["stderr"]:
                print(text, file=sys.stderr, flush=True)
        elif "log" in step:
            level = logging.getLevelName(step.get("level", "INFO"))
            for text in step["log"]:
                logger.log(level, text)
        elif "burst" in step:
            spec = step["burst"]
            _burst(spec["prefix"], spec["count"], spec.get("width", 0))
        elif "huge" in step:
            spec = step["huge"]
            prefix = spec["prefix"]
            print(prefix + spec.get("char", "x") * (spec["size"] - len(prefix)))
        elif "hold" in step:
            _hold(int(step["hold"]), context)
        elif step.get("hang"):
            threading.Event().wait()
    return {"ok": True, "request_id": context.aws_request_id}
