"""Small handlers for the emulator's tests."""

from __future__ import annotations

import logging
import time
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
    return {"ok": True, "echo": event.get("echo")}
