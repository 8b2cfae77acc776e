"""Text and JSON log formats end to end: prints, stderr, multi-line prints, multi-line
``logging`` calls and unicode all reach Loki exactly once, with the right labels and
metadata, and the extension adds (almost) nothing to any invoke."""

from __future__ import annotations

import random
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    EXTENSION_MARKER,
    assert_clean_shutdown,
    assert_no_resent_entries,
    assert_same_lines,
    batch_budget,
    function_entries,
    invoke_ok,
    loki_env,
    message_of,
    print_records,
    text_message,
)

UNICODE = [
    "grüße aus köln ✓",
    "日本語のログ行",
    "emoji 🚀🔥 and a combining e\u0301",
    "rtl שלום עולם",
    "tab\tinside and trailing spaces   ",
]
PRINTS = ["plain line one", "multi\nline\nprint", *UNICODE]
STDERR = ["to stderr", "stderr\ntwo lines"]
LOGS = ["info via logging", "a multi-line\nlogging call\n  with indentation", "ünïcödé via logging"]


def _steps(tag: str) -> list[dict[str, Any]]:
    return [
        {"print": [f"{tag} {p}" for p in PRINTS]},
        {"stderr": [f"{tag} {s}" for s in STDERR]},
        {"log": [f"{tag} {m}" for m in LOGS], "level": "INFO"},
        {"log": [f"{tag} warning {m}" for m in LOGS[:1]], "level": "WARNING"},
    ]


def _expected_prints(tag: str) -> list[str]:
    return print_records([f"{tag} {p}" for p in PRINTS] + [f"{tag} {s}" for s in STDERR])


def _expected_logs(tag: str) -> list[str]:
    return [f"{tag} {m}" for m in LOGS] + [f"{tag} warning {LOGS[0]}"]


def _run(make_emulator: MakeEmulator, receiver: Any, name: str, log_format: str) -> tuple[Any, list[str]]:
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: "7"}),
        function_name=name,
        log_format=log_format,
    )
    budget = batch_budget()
    request_ids = []
    for i in range(5):
        request_ids.append(budget.add(invoke_ok(emulator, _steps(f"inv{i}"))).request_id)
    result = emulator.shutdown()
    assert_clean_shutdown(result)
    budget.check()
    return emulator, request_ids


@pytest.mark.arm64
def test_text_format_every_record_stored_once(make_emulator: MakeEmulator, receiver: Any) -> None:
    _emulator, request_ids = _run(make_emulator, receiver, "e2e-text", "Text")
    entries = function_entries(receiver, "e2e-text")
    tags = [f"inv{i}" for i in range(5)]

    prints = [e.line for e in entries if not e.line.startswith("[")]
    logs = [e.line for e in entries if e.line.startswith("[")]
    assert_same_lines(prints, [ln for t in tags for ln in _expected_prints(t)], "print/stderr lines")
    # One logging call is one record even when it spans lines; the runtime's text
    # format prefixes it with level, time and request id.
    assert_same_lines(
        [text_message(ln).replace("\r", "\n") for ln in logs],
        [ln for t in tags for ln in _expected_logs(t)],
        "logging records",
    )
    assert_no_resent_entries(receiver)
    for line in logs:
        level, _, request_id, _ = line.split("\t", 3)
        assert level in ("[INFO]", "[WARNING]")
        assert request_id in request_ids
    # Labels: source + function (+ static ones), never a request id.
    for e in entries:
        assert e.labels.get("source") == envvars.SOURCE_LABEL_VALUE
        assert not any(rid in e.labels.values() for rid in request_ids)


@pytest.mark.arm64
def test_json_format_every_record_stored_once(make_emulator: MakeEmulator, receiver: Any) -> None:
    _run(make_emulator, receiver, "e2e-json", "JSON")
    entries = function_entries(receiver, "e2e-json")
    tags = [f"inv{i}" for i in range(5)]
    messages = [message_of(e.line) for e in entries]
    expected = [ln for t in tags for ln in _expected_prints(t) + _expected_logs(t)]
    assert_same_lines(messages, expected, "JSON-format messages")
    assert_no_resent_entries(receiver)


def test_json_format_request_id_and_level_in_structured_metadata(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    emulator = make_emulator(loki_env(receiver), function_name="e2e-json-meta", log_format="JSON")
    result = invoke_ok(emulator, [{"log": ["meta check"], "level": "WARNING"}])
    emulator.shutdown()
    [entry] = [e for e in function_entries(receiver, "e2e-json-meta") if "meta check" in e.line]
    # Loki 3.x: request id and level are structured metadata, not labels.
    values = {str(v) for v in (entry.metadata or {}).values()}
    assert result.request_id in values, entry.metadata
    assert any(v.upper().startswith("WARN") for v in values), entry.metadata
    assert result.request_id not in entry.labels.values()


def test_platform_events_ship_as_readable_lines(make_emulator: MakeEmulator, receiver: Any) -> None:
    name = "e2e-platform"
    emulator = make_emulator(
        loki_env(receiver, **{envvars.LOKI_TELEMETRY_TYPES: "platform,function"}), function_name=name
    )
    request_ids = [invoke_ok(emulator, [{"print": [f"p{i}"]}]).request_id for i in range(3)]
    emulator.shutdown()

    platform = [e.line for e in receiver.entries(f'{{function="{name}", type="platform"}}')]
    for rid in request_ids:
        # One START, END and REPORT per invoke, like CloudWatch's lines, with metrics.
        assert sum(ln.startswith(f"START RequestId: {rid}") for ln in platform) == 1, platform
        assert sum(ln.startswith(f"END RequestId: {rid}") for ln in platform) == 1, platform
        [report] = [ln for ln in platform if ln.startswith(f"REPORT RequestId: {rid}")]
        assert "Duration:" in report and "Memory" in report, report
    assert_same_lines([e.line for e in function_entries(receiver, name)], ["p0", "p1", "p2"])


def test_extension_logs_never_loop_back_the_extensions_own_diagnostics(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    """Subscribed to ``extension`` records, the extension must not ship its own stderr
    diagnostics back to Loki (each shipped diagnostic could cause another: a loop)."""
    name = "e2e-ext-loop"
    emulator = make_emulator(
        loki_env(
            receiver, **{envvars.LOKI_TELEMETRY_TYPES: "function,extension", envvars.LOKI_LABELS: "{bad"}
        ),
        function_name=name,
    )
    receiver.faults.rate_limit(times=3, retry_after=0)  # provokes "cannot push" diagnostics
    for i in range(5):
        invoke_ok(emulator, [{"print": [f"x{i}"]}])
    emulator.shutdown()
    diagnostics = [ln for ln in emulator.extension_stderr() if EXTENSION_MARKER in ln]
    assert diagnostics, "expected the extension to have said something on stderr"
    shipped = [e.line for e in receiver.entries(f'{{function="{name}", type="extension"}}')]
    # Only the deliberate drop report may be shipped, never the stderr diagnostics themselves.
    looped = [ln for ln in shipped if "entries lost" not in ln]
    assert looped == [], looped
    assert_same_lines([e.line for e in function_entries(receiver, name)], [f"x{i}" for i in range(5)])


def test_loki_ip_means_port_3100_and_the_push_path(make_emulator: MakeEmulator) -> None:
    """The LOKI_IP contract: ``http://<LOKI_IP>:3100/loki/api/v1/push``. The receiver
    sits on port 3100 of a spare loopback address (all of 127.0.0.0/8 is loopback), so a
    demo's Loki on 127.0.0.1:3100 cannot collide with it."""
    from harness.loki_receiver import LokiReceiver

    rng = random.Random()
    for _ in range(20):
        host = f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"
        try:
            loki = LokiReceiver(host=host, port=envvars.LOKI_IP_PORT).start()
        except OSError:
            continue  # that address:port is taken; try another
        break
    else:
        raise AssertionError("no free loopback address for port 3100")
    with loki:
        emulator = make_emulator({envvars.LOKI_IP: host}, function_name="e2e-loki-ip")
        invoke_ok(emulator, [{"print": ["via LOKI_IP"]}])
        emulator.shutdown()
        assert [e.line for e in function_entries(loki, "e2e-loki-ip")] == ["via LOKI_IP"]
        assert {r.path for r in loki.push_requests()} == {envvars.LOKI_PUSH_PATH}
