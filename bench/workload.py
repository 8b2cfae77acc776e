"""The benchmark function and the log lines it writes.

Every line carries a run tag, a sequence number and the wall-clock nanosecond
it was written (``BENCH <tag> <seq> <emit_ns> <filler>``), so the receiver's
stored entries tell exactly which lines arrived and how late.
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Line sizes (bytes, without the newline) for the CPU figure: a bare message, a
#: typical `logging` line with level/time/request id, and a long JSON-ish dump.
LINE_SIZES = {"short": 40, "typical": 200, "long": 8192}

HANDLER = '''\
import sys
import time

_FILLER = {filler!r}


def handler(event, context):
    """Write event["lines"] lines of about event["size"] bytes to stdout, as fast as possible."""
    tag = event.get("tag", "t")
    n = int(event.get("lines", 0))
    size = int(event.get("size", 80))
    seq = int(event.get("seq", 0))
    write = sys.stdout.write
    span = len(_FILLER) - size - 1
    for i in range(n):
        head = "BENCH %s %d %d " % (tag, seq + i, time.time_ns())
        off = ((seq + i) * 7919) % span  # a different slice per line: realistic compression
        write(head + _FILLER[off : off + max(0, size - len(head))] + "\\n")
    sys.stdout.flush()
    if event.get("sleep_ms"):
        # The function "working" with nothing to log: thawed time the extension may flush in.
        time.sleep(event["sleep_ms"] / 1000.0)
    return {{"emitted": n}}
'''


def filler(max_size: int = 300_000, seed: int = 5) -> str:
    """Log-like text: words and hex ids, compressible about as well as real logs."""
    rng = random.Random(seed)
    words = ["GET", "PUT", "key=", "status=200", "bucket", "user", "ms", "items", "ok", "table", "DynamoDB"]
    parts: list[str] = []
    total = 0
    while total < max_size:
        w = rng.choice(words) if rng.random() < 0.7 else f"{rng.getrandbits(48):012x}"
        parts.append(w)
        total += len(w) + 1
    return " ".join(parts)[:max_size]


def lines_like_handler(n: int, size: int, tag: str = "floor") -> list[str]:
    """Exactly the lines the benchmark handler writes for (n, size): runs its code here."""
    ns: dict[str, Any] = {}
    exec(compile(HANDLER.format(filler=filler()), "bench_fn.py", "exec"), ns)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ns["handler"](event(tag, n, size), None)
    return buf.getvalue().splitlines()


def write_function(code_dir: Path) -> str:
    """Write the benchmark handler into ``code_dir``; returns the handler name."""
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "bench_fn.py").write_text(HANDLER.format(filler=filler()))
    return "bench_fn.handler"


@dataclass(frozen=True)
class Parsed:
    tag: str
    seq: int
    emit_ns: int


def parse_line(line: str) -> Parsed | None:
    """The tag, sequence and emit time of a benchmark line (None for anything else)."""
    idx = line.find("BENCH ")
    if idx < 0:
        return None
    parts = line[idx:].split(" ", 4)
    try:
        return Parsed(tag=parts[1], seq=int(parts[2]), emit_ns=int(parts[3]))
    except (IndexError, ValueError):
        return None


def event(tag: str, lines: int, size: int, seq: int = 0, sleep_ms: int = 0) -> dict[str, object]:
    return {"tag": tag, "lines": lines, "size": size, "seq": seq, "sleep_ms": sleep_ms}
