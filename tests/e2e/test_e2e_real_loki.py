"""The core scenarios against real Grafana Loki servers (2.7.7, 2.9.17, 3.4.6), both
builds: a burst, an outage (the Loki process stopped and started again on the same
data), SHUTDOWN with a backlog, both log formats, huge lines around each version's
``max_line_size``, and the structured-metadata fallback that 2.x needs. In every one,
100% of the lines are stored, exactly once.

The servers are the real binaries (see ``harness.real_loki``), started once per session by
the shared ``real_loki`` fixture (``tests/real_loki_fixtures.py``).
When they are absent the tier is deselected and ``test_real_loki_binaries_present`` says
so in one line.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from harness.real_loki import VERSIONS, missing_reason
from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    Build,
    assert_clean_shutdown,
    assert_same_lines,
    batch_budget,
    burst_lines,
    bursts_with_error_lines,
    function_entries,
    invoke_burst,
    invoke_ok,
    loki_env,
    message_of,
    reported_drops,
    text_message,
)
from tests.e2e.test_e2e_formats import _expected_logs, _expected_prints, _steps

pytestmark = pytest.mark.real_loki
#: Every scenario runs against every version (and, through the `build` fixture, both builds).
each_version = pytest.mark.parametrize("version", VERSIONS)

#: Load shaping while Loki is down, as in the receiver's outage test (not synchronisation).
INVOKE_INTERVAL_S = 0.25


def test_real_loki_binaries_present() -> None:
    """The one line that says why the tier (or part of it) does not run: the tests of a
    version whose binary is absent are deselected."""
    missing = [reason for reason in map(missing_reason, VERSIONS) if reason]
    if missing:
        pytest.skip(
            f"real-Loki tier not run for {len(missing)} of {len(VERSIONS)} versions: {'; '.join(missing)}"
        )


def _name(scenario: str, build: Build, version: str) -> str:
    """Streams are per function: one name per scenario, build and version (servers are shared)."""
    return f"rl-{scenario}-{build.id}-{version.replace('.', '')}"


def _user_texts(stored: list[str], expected: list[str]) -> list[str]:
    """Map each stored line back to the user's text. JSON records are compared by their
    message, Text-format logging records without the runtime's "[LEVEL]\\t<time>\\t<id>\\t"
    prefix. On Loki 2.x the extension moves request id and level into the line (its
    fallback for structured metadata), so a stored text is the expected one exactly, else
    the longest expected text it ends with or contains ("line" must not claim "plain line")."""
    wanted = set(expected)
    by_length = sorted(wanted, key=len, reverse=True)
    out = []
    for line in stored:
        text = text_message(message_of(_json_head(line))).replace("\r", "\n")
        if text not in wanted:
            match = next((x for x in by_length if text.endswith(x)), None)
            text = match or next((x for x in by_length if x in text), text)
        out.append(text)
    return out


def _json_head(line: str) -> str:
    """A JSON record followed by fallback fields (``{...} request_id=...``): the record."""
    if line.startswith("{"):
        try:
            _, end = json.JSONDecoder().raw_decode(line)
        except ValueError:
            return line
        return line[:end]
    return line


def _traffic(emulator: Any, prefix: str, invokes: int, count: int, width: int = 60) -> list[str]:
    budget = batch_budget()
    expected: list[str] = []
    for i in range(invokes):
        steps = [{"burst": {"prefix": f"{prefix}{i:03d}", "count": count, "width": width}}]
        budget.add(invoke_ok(emulator, steps))
        expected.extend(burst_lines(f"{prefix}{i:03d}", count, width))
    budget.check()
    return expected


@each_version
def test_burst_every_line_stored(
    make_emulator: MakeEmulator, real_server: Any, build: Build, version: str
) -> None:
    name = _name("burst", build, version)
    emulator = make_emulator(
        loki_env(real_server, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "500"}), function_name=name
    )
    # 6,000 lines over 30 frozen invokes, 12 pushes: the receiver suite does the 100k burst.
    expected = _traffic(emulator, "rb", invokes=30, count=200, width=80)
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    stored = [e.line for e in function_entries(real_server, name)]
    assert_same_lines(_user_texts(stored, expected), expected, f"burst on Loki {version}")
    assert reported_drops(emulator) == 0


@each_version
def test_outage_stop_and_restart_loses_nothing(
    make_emulator: MakeEmulator, real_server: Any, build: Build, version: str
) -> None:
    name = _name("outage", build, version)
    emulator = make_emulator(
        loki_env(real_server, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "50"}), function_name=name
    )
    budget = batch_budget()
    expected: list[str] = []

    def invoke(prefix: str) -> None:
        expected.extend(invoke_burst(emulator, budget, prefix, 40, 60))

    # GIVEN traffic already flowing (and stored)
    for i in range(5):
        invoke(f"pre{i}")
    # WHEN the Loki process stops (SIGTERM: it flushes its WAL and exits) while invokes go on
    real_server.stop()
    for i in range(10):
        invoke(f"down{i:02d}")
        threading.Event().wait(INVOKE_INTERVAL_S)
    # ... and starts again on the same data folder and port, with invokes going on while
    # it comes up (~16 s until /ready; it may accept pushes before that)
    restart_failed: list[BaseException] = []

    def restart() -> None:
        try:
            real_server.start()
        except BaseException as exc:  # surfaced in the test thread below
            restart_failed.append(exc)

    starter = threading.Thread(target=restart, name="loki-restart", daemon=True)
    starter.start()
    during = 0
    while starter.is_alive():
        invoke(f"up{during:03d}")
        during += 1
        starter.join(INVOKE_INTERVAL_S)
    assert not restart_failed, restart_failed
    for i in range(5):
        invoke(f"post{i}")
    shutdown = emulator.shutdown()

    # THEN every line is stored exactly once (those before the stop survived the restart),
    # nothing was reported dropped, and no invoke waited on Loki
    assert_clean_shutdown(shutdown)
    stored = [e.line for e in function_entries(real_server, name)]
    assert_same_lines(_user_texts(stored, expected), expected, f"outage on Loki {version}")
    assert reported_drops(emulator) == 0
    budget.check()


@each_version
def test_shutdown_with_backlog_stores_everything(
    make_emulator: MakeEmulator, real_server: Any, build: Build, version: str
) -> None:
    # GIVEN no size or age trigger before SHUTDOWN: only the drain can ship the backlog
    name = _name("shutdown", build, version)
    env = {envvars.DISPATCH_MIN_BATCH_SIZE: "10000", envvars.LOKI_FLUSH_INTERVAL_MS: "60000"}
    emulator = make_emulator(loki_env(real_server, flush="batch", **env), function_name=name)
    expected = _traffic(emulator, "sd", invokes=8, count=120, width=40)
    expected += _traffic(emulator, "sdlast", invokes=1, count=3_000, width=40)

    # WHEN SHUTDOWN arrives right after a 3,000-line invoke
    shutdown = emulator.shutdown()

    # THEN the drain stores all of it inside the deadline
    assert_clean_shutdown(shutdown)
    stored = [e.line for e in function_entries(real_server, name)]
    assert_same_lines(_user_texts(stored, expected), expected, f"SHUTDOWN drain on Loki {version}")
    assert reported_drops(emulator) == 0


@each_version
@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_formats_every_record_stored_once(
    make_emulator: MakeEmulator, real_server: Any, build: Build, version: str, log_format: str
) -> None:
    name = _name(f"fmt-{log_format.lower()}", build, version)
    emulator = make_emulator(
        loki_env(real_server, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "7"}),
        function_name=name,
        log_format=log_format,
    )
    budget = batch_budget()
    tags = [f"inv{i}" for i in range(4)]
    for tag in tags:
        budget.add(invoke_ok(emulator, _steps(tag)))
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    budget.check()

    expected = [ln for t in tags for ln in _expected_prints(t) + _expected_logs(t)]
    stored = [e.line for e in function_entries(real_server, name)]
    assert_same_lines(_user_texts(stored, expected), expected, f"{log_format} on Loki {version}")
    assert reported_drops(emulator) == 0


def _max_line_size(loki: Any) -> int:
    """The server's ``max_line_size`` in bytes (0: no limit), from its running config."""
    for raw in loki.config_text().splitlines():
        key, _, value = raw.strip().partition(":")
        if key == "max_line_size":
            value = value.strip().strip("'\"")
            units = {"KB": 1024, "MB": 1024**2, "B": 1}
            for unit, factor in units.items():
                if value.endswith(unit):
                    return int(float(value[: -len(unit)]) * factor)
            return int(value)
    raise AssertionError("max_line_size not in the server's configuration")


@each_version
def test_huge_lines_around_max_line_size(
    make_emulator: MakeEmulator, real_server: Any, build: Build, version: str
) -> None:
    """Lines just under, at and over the extension's split size and the server's own
    ``max_line_size`` (256 KiB on 3.x; none by default on 2.x): every byte stored, in
    pieces that reassemble to the line, with the lines around them intact."""
    name = _name("huge", build, version)
    split_at = envvars.SETTINGS[envvars.LOKI_MAX_LINE_BYTES].default
    server_limit = _max_line_size(real_server)
    sizes = sorted({split_at - 1, split_at, split_at + 1, 2 * split_at + 17})
    if server_limit:
        sizes = sorted({*sizes, server_limit - 1, server_limit, server_limit + 1})
    emulator = make_emulator(loki_env(real_server, flush="batch"), function_name=name)
    budget = batch_budget()
    normal = []
    for i, size in enumerate(sizes):
        prefix = f"HUGE{i:02d}|"
        steps: list[dict[str, Any]] = [
            {"print": [f"before-{i}"]},
            {"huge": {"prefix": prefix, "size": size, "char": "x"}},
            {"print": [f"after-{i}"]},
        ]
        budget.add(invoke_ok(emulator, steps))
        normal += [f"before-{i}", f"after-{i}"]
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    budget.check()
    assert reported_drops(emulator) == 0

    entries = function_entries(real_server, name)
    # LOKI_MAX_LINE_BYTES bounds every stored entry, whatever the extension adds to it.
    over = sorted(len(e.line.encode()) for e in entries if len(e.line.encode()) > split_at)
    assert not over, f"{len(over)} stored entries over {split_at} bytes: {over[:5]}"
    around = [e.line for e in entries if "HUGE" not in e.line and not _SPLIT.search(e.line)]
    assert_same_lines(_user_texts(around, normal), normal, "lines around huge ones")
    lines = [(e.ts_ns, e.line) for e in entries]
    for i, size in enumerate(sizes):
        prefix = f"HUGE{i:02d}|"
        whole = _reassemble(lines, prefix)
        assert whole == prefix + "x" * (size - len(prefix)), f"line of {size} bytes: got {len(whole)} bytes"


_SPLIT = re.compile(r" \[split (\d+)/(\d+)\]")
#: What Loki 2.x's metadata fallback may append to a line: " request_id=… level=…".
_FALLBACK_FIELDS = re.compile(r"(?: [a-z_]+=\S*)+$")


def _reassemble(lines: list[tuple[int, str]], prefix: str) -> str:
    """The stored line that starts with ``prefix``: itself when stored whole, else its
    pieces ("<part> [split i/n]") joined; fallback fields after either are dropped (the
    huge lines hold no "="). Piece i carries the first piece's timestamp plus i-1 ns (a
    few ns more at most), while other huge lines are whole invokes (ms) away."""
    starts = [(ts, ln) for ts, ln in lines if ln.startswith(prefix)]
    assert len(starts) == 1, f"{prefix!r} starts {len(starts)} stored lines"
    [(t0, first)] = starts
    m = _SPLIT.search(first)
    if m is None:
        return _FALLBACK_FIELDS.sub("", first)
    assert m.group(1) == "1", first[-80:]
    n = int(m.group(2))
    parts = {1: first[: m.start()]}
    for ts, ln in lines:
        mm = _SPLIT.search(ln)
        if mm and int(mm.group(2)) == n and 0 < ts - t0 < 1_000:
            assert int(mm.group(1)) not in parts, f"{prefix!r}: piece {mm.group(1)} stored twice"
            parts[int(mm.group(1))] = ln[: mm.start()]
    assert sorted(parts) == list(range(1, n + 1)), f"{prefix!r}: pieces {sorted(parts)} of {n}"
    return "".join(parts[i] for i in range(1, n + 1))


@each_version
def test_metadata_fallback_request_id_reaches_loki(
    make_emulator: MakeEmulator, real_server: Any, build: Build, version: str
) -> None:
    """3.x stores request id and level as structured metadata; 2.9 refuses metadata (400
    "disallowed") and 2.7 does not know it (400, a JSON decoding error): there the
    extension must find out by itself, re-send without it, and keep the request id in the
    line, with no line lost or stored twice while it finds out."""
    name = _name("meta", build, version)
    emulator = make_emulator(
        loki_env(real_server, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "25"}),
        function_name=name,
        log_format="JSON",
    )
    budget = batch_budget()
    expected, request_ids = bursts_with_error_lines(emulator, budget, "md", 6)
    shutdown = emulator.shutdown()
    assert_clean_shutdown(shutdown)
    budget.check()

    entries = function_entries(real_server, name)
    assert_same_lines(_user_texts([e.line for e in entries], expected), expected, f"Loki {version}")
    assert reported_drops(emulator) == 0
    logged = [e for e in entries if "logged-" in e.line]
    if real_server.structured_metadata:
        for e in logged:
            values = {str(v) for v in e.metadata.values()}
            assert values & set(request_ids), e.metadata
            assert any(v.upper().startswith("ERR") for v in values), e.metadata
    else:
        assert all(not e.metadata for e in entries), f"Loki {version} stored structured metadata?"
        for rid in request_ids:
            assert any(rid in e.line for e in logged), f"request id {rid} in no stored line"
