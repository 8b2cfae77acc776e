"""Helpers shared by the end-to-end tests: the two builds of the extension (where each
layer comes from), budgets, expected lines, line matching, and a way to hold an invoke
open (environment thawed) while the test observes."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loki_telemetry_extension import envvars
from loki_telemetry_extension.drop_report import parse_drop_report

REPO = Path(__file__).resolve().parents[2]
#: The Python build's layer root exactly as LokiTelemetryLayer bundles it. E2E_LAYER_DIR
#: points the suite at another copy (e.g. a deliberately broken one, to check the tests
#: can fail).
LAYER_DIR = Path(os.environ.get("E2E_LAYER_DIR") or REPO / "extension" / "python")
FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
HANDLER = "app.handler"
EXTENSION_MARKER = "[loki-telemetry-extension]"


# --- The two builds -------------------------------------------------------------
NATIVE_SOURCE = REPO / "extension" / "native"
NATIVE_BUILD_SCRIPT = NATIVE_SOURCE / "build.py"
#: Built native layers, one folder per digest of the Go sources: a test run never uses a
#: binary older than the source, and a second run (or xdist worker) reuses the first's.
NATIVE_CACHE = REPO / ".cache" / "e2e-native"
#: E2E_NATIVE_DIR points the suite at another build output (``<dir>/<arch>/extensions/...``),
#: e.g. a deliberately broken one built by the mutation check.
NATIVE_DIR_OVERRIDE = os.environ.get("E2E_NATIVE_DIR")
ARCHITECTURES = ("x86_64", "arm64")
EXTENSION_NAME = "loki-telemetry-extension"


@dataclass(frozen=True)
class Build:
    """One way the layer can be built, as the tests' ``build`` parameter names it."""

    id: str  # python | native | native-arm64
    kind: str  # python | native
    architecture: str  # x86_64 | arm64

    @property
    def native(self) -> bool:
        return self.kind == "native"


BUILDS = {
    "python": Build("python", "python", "x86_64"),
    "native": Build("native", "native", "x86_64"),
    "native-arm64": Build("native-arm64", "native", "arm64"),
}
#: E2E_BUILDS=python (or native) restricts a run to one build, as the mutation check does.
SELECTED_BUILDS = tuple(
    b for b in (os.environ.get("E2E_BUILDS") or "python,native,native-arm64").split(",") if b
)


def native_source_digest() -> str:
    """SHA-256 over what the native binary is built from: its Go sources (not their tests),
    go.mod/go.sum and the build script, by path and bytes (build outputs excluded)."""
    h = hashlib.sha256()
    for path in sorted(NATIVE_SOURCE.rglob("*")):
        rel = path.relative_to(NATIVE_SOURCE)
        if any(part.startswith((".", "__pycache__")) or part == "build" for part in rel.parts[:-1]):
            continue
        source = path.suffix in (".go", ".py") or path.name in ("go.mod", "go.sum")
        if not path.is_file() or not source or path.name.endswith("_test.go"):
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_native(out: Path, source: Path = NATIVE_SOURCE, arches: Sequence[str] = ARCHITECTURES) -> None:
    """Run the native build script into ``out`` (``out/<arch>/extensions/<name>``)."""
    cmd = [sys.executable, str(source / "build.py"), "--out", str(out)]
    for arch in arches:
        cmd += ["--arch", arch]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(
            f"native build failed ({' '.join(cmd)}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )


def native_layers_dir() -> Path:
    """The folder holding ``<arch>/extensions/loki-telemetry-extension`` for every architecture.

    Built once per source digest into ``.cache/e2e-native/<digest>`` under a file lock, so
    parallel pytest-xdist workers build it once between them; published with a rename, so
    a reader never sees half a build.
    """
    if NATIVE_DIR_OVERRIDE:
        return Path(NATIVE_DIR_OVERRIDE)
    target = NATIVE_CACHE / native_source_digest()
    if _complete(target):
        return target
    NATIVE_CACHE.mkdir(parents=True, exist_ok=True)
    with (NATIVE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete(target):
            tmp = Path(tempfile.mkdtemp(prefix="building-", dir=NATIVE_CACHE))
            try:
                build_native(tmp)
                if not _complete(tmp):
                    raise RuntimeError(
                        f"{NATIVE_BUILD_SCRIPT} did not write <arch>/extensions/{EXTENSION_NAME}"
                    )
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _prune(keep=target)
    return target


#: Builds kept in the cache (13 MB each): the current one and a few before it, for a
#: run still using one while the source changes under it.
NATIVE_CACHE_KEEP = 4


def _prune(keep: Path) -> None:
    builds = sorted(
        (d for d in NATIVE_CACHE.iterdir() if d.is_dir() and not d.name.startswith("building-")),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in [d for d in builds if d != keep][NATIVE_CACHE_KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def _complete(folder: Path) -> bool:
    return all((folder / arch / "extensions" / EXTENSION_NAME).is_file() for arch in ARCHITECTURES)


def native_missing_reason() -> str:
    """Why the native build cannot be tested here ("" when it can)."""
    if NATIVE_DIR_OVERRIDE or NATIVE_BUILD_SCRIPT.is_file():
        return ""
    return f"native build not tested: {NATIVE_BUILD_SCRIPT.relative_to(REPO)} does not exist"


# --- Budgets -------------------------------------------------------------------
# post_runtime_ms is what the extension adds to every invoke (runtime response -> last
# extension `next`): billed time the user pays for. Batch mode calls `next` at once,
# so it should be ~0; the bounds are generous because two cores are shared by
# several concurrent test runs (precise figures live in bench/, not here).
BATCH_P50_BUDGET_MS = 50.0
BATCH_MAX_BUDGET_MS = 1_000.0
#: Ship-before-freeze waits for runtimeDone and one push to a local receiver.
SHIP_P50_BUDGET_MS = 400.0
SHIP_MAX_BUDGET_MS = 2_500.0
#: Lambda SIGKILLs the environment 2,000 ms after SHUTDOWN.
SHUTDOWN_DEADLINE_MS = 2_000.0
#: How long to wait for lines that are due (condition-variable waits, not sleeps).
ARRIVAL_TIMEOUT_S = 15.0


def invoke_ok(emulator: Any, steps: list[dict[str, Any]]) -> Any:
    """Invoke and assert that the function itself succeeded."""
    result = emulator.invoke({"steps": steps})
    assert result.error is None, f"invoke failed: {result.error!r}"
    # Also catches extensions overrunning the deadline (timeout + environment reset).
    assert result.status == "success" and result.reset_reason is None, result
    return result


@dataclass
class Budget:
    """Collects post_runtime_ms of every invoke and checks it against a budget."""

    p50_ms: float
    max_ms: float
    samples: list[float] = field(default_factory=list)

    def add(self, result: Any) -> Any:
        self.samples.append(float(result.post_runtime_ms))
        return result

    def check(self) -> None:
        assert self.samples, "no invokes measured"
        p50 = statistics.median(self.samples)
        worst = max(self.samples)
        assert p50 <= self.p50_ms, f"median post_runtime_ms {p50:.1f} > budget {self.p50_ms}"
        assert worst <= self.max_ms, f"worst post_runtime_ms {worst:.1f} > budget {self.max_ms}"


def batch_budget() -> Budget:
    return Budget(BATCH_P50_BUDGET_MS, BATCH_MAX_BUDGET_MS)


def ship_budget() -> Budget:
    return Budget(SHIP_P50_BUDGET_MS, SHIP_MAX_BUDGET_MS)


# --- What the function wrote --------------------------------------------------------
def burst_lines(prefix: str, count: int, width: int = 0) -> list[str]:
    """The lines app.handler's ``burst`` step prints (keep in sync with functions/app.py)."""
    lines = []
    for i in range(count):
        head = f"{prefix}-{i:06d} "
        lines.append(head + "." * max(0, width - len(head)))
    return lines


def invoke_burst(emulator: Any, budget: Budget, prefix: str, count: int, width: int) -> list[str]:
    """One invoke writing ``count`` burst lines, timed against ``budget``; returns the lines."""
    budget.add(invoke_ok(emulator, [{"burst": {"prefix": prefix, "count": count, "width": width}}]))
    return burst_lines(prefix, count, width)


def bursts_with_error_lines(
    emulator: Any, budget: Budget, prefix: str, invokes: int
) -> tuple[list[str], list[str]]:
    """Invoke ``invokes`` times: 30 lines of 40 bytes, then one ERROR-level logged line.

    The structured-metadata workload: the logged line carries request id and level, which
    Loki 3.x stores as metadata and a Loki 2.x fallback must keep in the line.
    Returns (every line expected in Loki, the invokes' request ids).
    """
    expected: list[str] = []
    request_ids: list[str] = []
    for i in range(invokes):
        steps: list[dict[str, Any]] = [
            {"burst": {"prefix": f"{prefix}{i}", "count": 30, "width": 40}},
            {"log": [f"logged-{i}"], "level": "ERROR"},
        ]
        request_ids.append(budget.add(invoke_ok(emulator, steps)).request_id)
        expected.extend([*burst_lines(f"{prefix}{i}", 30, 40), f"logged-{i}"])
    return expected, request_ids


def print_records(texts: Iterable[str]) -> list[str]:
    """Lambda delivers a multi-line print as one record per line."""
    return [line for text in texts for line in text.split("\n")]


# --- What Loki stored ---------------------------------------------------------------
def is_function_output(entry: Any, function_name: str) -> bool:
    """The function's own lines: its stream, without the type label that marks
    platform/extension records and the extension's own reports."""
    labels = entry.labels
    return labels.get("function") == function_name and "type" not in labels


def function_entries(receiver: Any, function_name: str) -> list[Any]:
    entries = receiver.entries(f'{{function="{function_name}"}}')
    return [e for e in entries if is_function_output(e, function_name)]


def message_of(line: str) -> str:
    """The user's text of a stored line: JSON-format records are stored as the JSON
    object (possibly with the extension's fallback fields); compare their message."""
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            return line
        if isinstance(obj, dict) and "message" in obj:
            message = obj["message"]
            return message if isinstance(message, str) else json.dumps(message)
    return line


def text_message(line: str) -> str:
    """The message of a Text-format ``logging`` line: ``[LEVEL]\\t<time>\\t<request id>\\t<msg>``."""
    if line.startswith("[") and line.count("\t") >= 3:
        return line.split("\t", 3)[3]
    return line


def assert_same_lines(stored: Sequence[str], expected: Sequence[str], what: str = "lines") -> None:
    """Multiset equality with a readable diff: nothing lost, nothing duplicated."""
    got, want = Counter(stored), Counter(expected)
    if got == want:
        return
    missing = want - got
    extra = got - want
    dupes = {k: v for k, v in got.items() if v > 1 and want.get(k, 0) < v}

    def show(c: Counter[str]) -> str:
        items = list(c.items())[:5]
        return ", ".join(f"{k[:80]!r}x{v}" for k, v in items)

    raise AssertionError(
        f"{what}: stored {len(stored)} vs emitted {len(expected)}; "
        f"missing {sum(missing.values())} [{show(missing)}]; "
        f"unexpected {sum(extra.values())} [{show(extra)}]; duplicated {len(dupes)}"
    )


def wait_until(
    predicate: Callable[[], bool], timeout_s: float, condition: threading.Event | None = None
) -> bool:
    """Poll ``predicate`` until true or the deadline; waits on an Event, never a bare sleep."""
    stop = condition or threading.Event()
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        stop.wait(min(0.05, left))


# --- Holding an invoke open ------------------------------------------------------
@dataclass
class Held:
    request_id: str
    result: list[Any]


@contextmanager
def held_invoke(emulator: Any, steps: list[dict[str, Any]], timeout_s: float = 20.0) -> Iterator[Held]:
    """Run an invoke whose handler runs ``steps`` then blocks until released.

    While inside the ``with`` body the runtime and extensions are thawed (Lambda is
    mid-invoke), so the test can watch the extension work without racing a freeze.
    The handler connecting back is the synchronisation point: no sleeps.
    """
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(timeout_s)
        port = server.getsockname()[1]
        outcome: list[Any] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                outcome.append(emulator.invoke({"steps": [*steps, {"hold": port}]}))
            except BaseException as exc:  # surfaced in the test thread below
                failure.append(exc)

        thread = threading.Thread(target=run, name="held-invoke", daemon=True)
        thread.start()
        conn, _ = server.accept()
        with conn:
            conn.settimeout(timeout_s)
            request_id = conn.makefile("rb").readline().decode().strip()
            try:
                yield Held(request_id, outcome)
            finally:
                conn.sendall(b"x")
        thread.join(timeout_s)
        assert not thread.is_alive(), "held invoke did not finish after release"
        if failure:
            raise failure[0]
        assert outcome and outcome[0].error is None, f"held invoke failed: {outcome!r}"


# --- Environments ----------------------------------------------------------------
def loki_env(receiver: Any, *, flush: str | None = None, **extra: str) -> dict[str, str]:
    """The environment the construct would set, pointing at ``receiver`` (a receiver's
    ``url`` or a real Loki's ``push_url``). ``flush`` sets LOKI_FLUSH: tests that hold the
    function to the batch budget say ``flush="batch"``, as the default (adaptive) ships
    sparse invokes before the freeze on purpose."""
    url = getattr(receiver, "push_url", None) or receiver.url
    env = {envvars.LOKI_URL: url, **extra}
    if flush is not None:
        env[envvars.LOKI_FLUSH] = flush
    return env


MOTO_REGION = "us-east-1"
MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing-session",
    "AWS_REGION": MOTO_REGION,
    "AWS_DEFAULT_REGION": MOTO_REGION,
}


def aws_env(moto_url: str) -> dict[str, str]:
    """What a function's environment carries to reach moto instead of AWS."""
    return {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL": moto_url}


def boto_client(service: str, moto_url: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=MOTO_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# --- Pythons ------------------------------------------------------------------------
def pyenv_pythons() -> list[str]:
    """Newest pyenv interpreter for each Lambda Python runtime the extension supports."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for minor in ("3.10", "3.11", "3.12", "3.13"):
        candidates = sorted(
            root.glob(f"{minor}.*/bin/python3"),
            key=lambda p: tuple(int(x) for x in p.parts[-3].split(".") if x.isdigit()),
        )
        if candidates:
            found.append(str(candidates[-1]))
    return found


# --- The extension's own accounts -------------------------------------------------
def reported_drop_counters(emulator: Any) -> dict[str, int]:
    """The extension's latest cumulative drop counters (empty: it never reported a loss).

    The line's text is the extension's own (``loki_telemetry_extension.drop_report``);
    both builds write it, and this reads it with the extension's parser.
    """
    latest: dict[str, int] = {}
    for line in emulator.extension_stderr():
        if EXTENSION_MARKER not in line:
            continue
        counts = parse_drop_report(line)
        if counts is not None:
            latest = counts
    return latest


def reported_drops(emulator: Any) -> int:
    """Lines the extension says it lost (its own drops plus Lambda's logsDropped records)."""
    return sum(reported_drop_counters(emulator).values())


def assert_clean_shutdown(shutdown: Any, *, all_delivered: bool = True) -> None:
    """The extension left by itself inside Lambda's 2,000 ms SHUTDOWN deadline, after
    Lambda had delivered it everything (records still held then are lost unreported).
    ``all_delivered=False`` only where the extension is a declared no-op."""
    assert shutdown.duration_ms < SHUTDOWN_DEADLINE_MS, f"SHUTDOWN took too long: {shutdown}"
    assert not shutdown.killed, f"SIGKILLed at the shutdown deadline: {shutdown}"
    if all_delivered:
        assert shutdown.undelivered_records == 0, f"exited before Lambda delivered everything: {shutdown}"


def assert_healthy_extension(emulator: Any, shutdown: Any, *, all_delivered: bool = True) -> None:
    """No Extension.Crash at any point, a clean exit by itself at SHUTDOWN, no traceback."""
    assert not emulator.resets, f"environment was reset (crash/timeout): {emulator.resets}"
    assert_clean_shutdown(shutdown, all_delivered=all_delivered)
    ext_codes = {n: c for n, c in shutdown.exit_codes.items() if n != "runtime"}
    assert ext_codes and all(c == 0 for c in ext_codes.values()), f"extension exit codes: {ext_codes}"
    stderr = "\n".join(emulator.extension_stderr())
    assert_no_crash_text(stderr)


#: What an escaped error looks like: a Python traceback, or a Go panic (native build).
CRASH_TEXTS = ("Traceback", "panic:", "goroutine ")


def assert_no_crash_text(stderr: str) -> None:
    for text in CRASH_TEXTS:
        assert text not in stderr, stderr[-3000:]


def extension_pids(emulator: Any) -> list[int]:
    return list(emulator.extension_pids.values())


def listener_port(emulator: Any) -> int:
    """Port of the extension's Telemetry API listener (from its subscription)."""
    subs = emulator.subscriptions()
    assert len(subs) == 1, f"expected one subscriber, got {subs}"
    return int(next(iter(subs.values())).port)


def assert_no_resent_entries(receiver: Any) -> None:
    """Every pushed entry that Loki stored was pushed once: no request re-sent entries
    that were already stored (the receiver dedupes like Loki, so count at the wire)."""
    assert receiver.duplicates == 0, f"{receiver.duplicates} entries were pushed twice"
