"""Misconfiguration never harms the function: invokes succeed within budget, the
extension keeps calling ``next`` (no Extension.Crash, exits by itself at SHUTDOWN),
and its stderr names what is wrong. Where a safe fallback exists, lines still ship."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    EXTENSION_MARKER,
    assert_clean_shutdown,
    assert_healthy_extension,
    assert_no_crash_text,
    assert_same_lines,
    aws_env,
    batch_budget,
    function_entries,
    invoke_burst,
    loki_env,
    reported_drop_counters,
    reported_drops,
)


def _closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_traffic(
    emulator: Any, prefix: str, invokes: int = 6, *, all_delivered: bool = True
) -> tuple[list[str], Any]:
    budget = batch_budget()
    expected: list[str] = []
    for i in range(invokes):
        expected += invoke_burst(emulator, budget, f"{prefix}{i}", 15, 30)
    shutdown = emulator.shutdown()
    budget.check()
    assert_healthy_extension(emulator, shutdown, all_delivered=all_delivered)
    return expected, shutdown


def _assert_declared_no_op(emulator: Any, receiver: Any, name: str) -> None:
    """Without credentials nothing can ship: the extension must say that it ships nothing
    (a per-line drop count is not possible for lines Lambda never handed it)."""
    assert function_entries(receiver, name) == []
    _assert_reported(emulator, "not shipping")


def _stderr(emulator: Any) -> str:
    return "\n".join(emulator.extension_stderr())


def _assert_reported(emulator: Any, *words: str) -> None:
    text = _stderr(emulator)
    assert EXTENSION_MARKER in text, f"no diagnostic from the extension; stderr: {text[-1500:]!r}"
    assert_no_crash_text(text)
    for word in words:
        assert word.lower() in text.lower(), f"stderr does not mention {word!r}: {text[-1500:]!r}"


@pytest.mark.parametrize(
    ("case", "env", "mentions"),
    [
        ("no-url", {}, [envvars.LOKI_URL]),
        ("ftp-url", {envvars.LOKI_URL: "ftp://127.0.0.1/loki/api/v1/push"}, [envvars.LOKI_URL]),
        ("garbage-url", {envvars.LOKI_URL: "not a url at all"}, [envvars.LOKI_URL]),
        (
            "both-ip-and-url",
            {envvars.LOKI_URL: "http://127.0.0.1:9/x", envvars.LOKI_IP: "127.0.0.1"},
            [envvars.LOKI_IP, envvars.LOKI_URL],
        ),
    ],
)
def test_no_usable_url_is_a_reported_no_op(
    make_emulator: MakeEmulator, case: str, env: dict[str, str], mentions: list[str]
) -> None:
    # Batch: "both-ip-and-url" uses an unreachable URL, and the function is held to the
    # batch budget (adaptive would wait for Loki before each sparse invoke's freeze).
    emulator = make_emulator({**env, envvars.LOKI_FLUSH: "batch"}, function_name=f"e2e-misconfig-{case}")
    _run_traffic(emulator, "nu")
    _assert_reported(emulator, *mentions)


def test_unreachable_loki_reports_every_dropped_line(make_emulator: MakeEmulator, receiver: Any) -> None:
    url = f"http://127.0.0.1:{_closed_port()}{envvars.LOKI_PUSH_PATH}"
    emulator = make_emulator(
        {envvars.LOKI_URL: url, envvars.LOKI_FLUSH: "batch"}, function_name="e2e-unreachable"
    )
    expected, shutdown = _run_traffic(emulator, "ur")
    assert_clean_shutdown(shutdown)
    _assert_reported(emulator, "127.0.0.1")
    # Nothing could be delivered, so every line must be counted as dropped.
    assert reported_drops(emulator) == len(expected)


def test_tls_failure_is_reported_not_fatal(make_emulator: MakeEmulator, receiver: Any) -> None:
    # https to a plain-HTTP server: the TLS handshake fails.
    url = receiver.url.replace("http://", "https://")
    emulator = make_emulator({envvars.LOKI_URL: url, envvars.LOKI_FLUSH: "batch"}, function_name="e2e-tls")
    expected, _ = _run_traffic(emulator, "tl")
    _assert_reported(emulator)
    assert function_entries(receiver, "e2e-tls") == []
    assert reported_drops(emulator) == len(expected)


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "10001", "1.5", ""])
def test_bad_batch_size_falls_back_and_still_ships(
    make_emulator: MakeEmulator, receiver: Any, bad: str
) -> None:
    name = f"e2e-badbatch-{abs(hash(bad))}"
    emulator = make_emulator(
        loki_env(receiver, flush="batch", **{envvars.DISPATCH_MIN_BATCH_SIZE: bad}), function_name=name
    )
    expected, _ = _run_traffic(emulator, "bb")
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, f"batch size {bad!r}")
    if bad:  # an empty value may simply mean "unset"
        _assert_reported(emulator, envvars.DISPATCH_MIN_BATCH_SIZE)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        (envvars.LOKI_LABELS, "{not json"),
        (envvars.LOKI_LABELS, '{"__bad": "x", "source": "override"}'),
        (envvars.LOKI_TELEMETRY_TYPES, "function,bogus"),
        (envvars.LOKI_BUFFER_TIMEOUT_MS, "5"),
        (envvars.LOKI_MAX_BUFFER_BYTES, "lots"),
        (envvars.LOKI_FLUSH_INTERVAL_MS, "-1"),
    ],
)
def test_other_bad_values_fall_back_and_still_ship(
    make_emulator: MakeEmulator, receiver: Any, variable: str, value: str
) -> None:
    name = f"e2e-badvalue-{variable.lower().replace('_', '-')}-{abs(hash(value)) % 1000}"
    emulator = make_emulator(loki_env(receiver, flush="batch", **{variable: value}), function_name=name)
    expected, _ = _run_traffic(emulator, "bv", invokes=3)
    assert_same_lines([e.line for e in function_entries(receiver, name)], expected, f"{variable}={value!r}")
    _assert_reported(emulator, variable)


def test_missing_secret_is_reported_and_function_unharmed(
    make_emulator: MakeEmulator, receiver: Any, moto_url: str
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf"
    env = {
        **aws_env(moto_url),
        **loki_env(receiver, flush="batch", **{envvars.LOKI_BASIC_AUTH_SECRET_ARN: arn}),
    }
    emulator = make_emulator(env, function_name="e2e-missing-secret")
    _run_traffic(emulator, "ms", all_delivered=False)
    # Names the setting and the secret that failed, and why.
    _assert_reported(emulator, envvars.LOKI_BASIC_AUTH_SECRET_ARN, arn, "ResourceNotFound")
    _assert_declared_no_op(emulator, receiver, emulator.function_name)


def test_secret_service_unreachable_is_reported(make_emulator: MakeEmulator, receiver: Any) -> None:
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/loki/token"
    env = {
        **aws_env(f"http://127.0.0.1:{_closed_port()}"),
        **loki_env(receiver, flush="batch", **{envvars.LOKI_BEARER_TOKEN_SECRET_ARN: arn}),
    }
    emulator = make_emulator(env, function_name="e2e-secret-unreachable")
    _run_traffic(emulator, "su", all_delivered=False)
    _assert_reported(emulator, envvars.LOKI_BEARER_TOKEN_SECRET_ARN, arn, "refused")
    _assert_declared_no_op(emulator, receiver, emulator.function_name)


def test_wrong_credentials_are_reported_without_a_push_storm(make_emulator: MakeEmulator) -> None:
    """Loki answering 401 to every push (wrong tenant setup or credentials) is final:
    the extension must count the lines as dropped and say so, not keep pushing (its
    own drop report is rejected too, which must not trigger yet another report)."""
    from harness.loki_receiver import LokiReceiver

    with LokiReceiver(require_tenant=True) as loki:
        emulator = make_emulator(loki_env(loki, flush="batch"), function_name="e2e-401")
        expected, shutdown = _run_traffic(emulator, "au", invokes=5)
        assert_clean_shutdown(shutdown)
        _assert_reported(emulator, "401")
        pushes = loki.push_requests()
        assert all(r.status == 401 for r in pushes)
        # One push per invoke's batch plus the shutdown drain and a report or two; a
        # report-about-the-report loop makes dozens.
        assert len(pushes) <= 2 * 5 + 4, f"{len(pushes)} pushes for 5 invokes: rejected reports loop"
        assert reported_drop_counters(emulator).get("rejected_by_loki", 0) >= len(expected)
