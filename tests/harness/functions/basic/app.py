"""Small handlers for the emulator's tests."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)
print("init line from module scope")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    for i in range(int(event.get("lines", 1))):
        print(f"line {i} of {context.aws_request_id}".ljust(int(event.get("width", 0)), "x"))
    if event.get("log"):
        logger.info(event["log"])
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    if event.get("fail"):
        raise ValueError(event["fail"])
    if event.get("rendezvous"):
        return _rendezvous(Path(event["rendezvous"]), int(event["parties"]), context)
    return {"ok": True, "echo": event.get("echo")}


def _rendezvous(room: Path, parties: int, context: Any) -> dict[str, Any]:
    """Concurrent invokes (Managed Instances) meet here: each logs, then waits until all
    `parties` are in flight at once, then logs again. Sequential invokes never meet."""
    # Logged before announcing itself, so every "arrived" precedes every "leaving".
    logger.info("arrived")
    (room / context.aws_request_id).touch()
    deadline = time.monotonic() + 5
    while len(list(room.iterdir())) < parties and time.monotonic() < deadline:
        time.sleep(0.005)  # polling a directory other processes write, bounded by the deadline
    together = len(list(room.iterdir())) >= parties
    logger.info("leaving")
    return {"ok": True, "together": together, "tenant": getattr(context, "tenant_id", None)}
