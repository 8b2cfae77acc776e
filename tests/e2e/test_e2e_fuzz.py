"""Fuzzed telemetry payloads posted straight to a running extension's listener: the
listener always answers at once, the extension never crashes, and it keeps shipping
the function's real lines afterwards."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loki_telemetry_extension import envvars
from loki_telemetry_extension import platform_events as pe

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    Build,
    assert_healthy_extension,
    assert_same_lines,
    burst_lines,
    function_entries,
    held_invoke,
    invoke_ok,
    listener_port,
    loki_env,
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=200),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_types = st.sampled_from(
    [
        pe.FUNCTION,
        pe.EXTENSION,
        pe.START,
        pe.RUNTIME_DONE,
        pe.REPORT,
        pe.LOGS_DROPPED,
        pe.INIT_START,
        # Types the extension has no name for: it must ship or skip them, never crash.
        "platform.fault",
        "",
        "weird",
    ]
)
_times = st.one_of(
    st.just("2026-11-24T10:00:00.123Z"),
    st.just("not a time"),
    st.just("1970-01-01T00:00:00Z"),
    st.just("9999-12-31T23:59:59.999Z"),
    st.text(max_size=30),
    st.integers(),
    st.none(),
)
#: Events that look like telemetry but with hostile fields.
_event = st.fixed_dictionaries(
    {"type": _types, "record": _json},
    optional={"time": _times, "extra": _json},
)
_payload = st.one_of(
    st.lists(_event, max_size=20).map(lambda v: json.dumps(v).encode()),
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=2_000),
    st.text(max_size=500).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


def _post(port: int, body: bytes, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return int(resp.status)
    finally:
        conn.close()


#: Raw bytes on the listener's socket: broken request lines, headers and framing.
_raw_request = st.one_of(
    st.binary(min_size=1, max_size=600),
    st.builds(
        lambda method, path, headers, body: (
            f"{method} {path} HTTP/1.1\r\n{headers}\r\n".encode("utf-8", "surrogatepass") + body
        ),
        st.sampled_from(["POST", "GET", "PUT", "", "P\x00ST", "POST POST"]),
        st.sampled_from(["/", "", "*", "/\xff", "x" * 9000]),
        st.sampled_from(
            [
                "Content-Length: 5\r\n",
                "Content-Length: -1\r\n",
                "Content-Length: 99999999999999999999\r\n",
                "Content-Length: abc\r\n",
                "Transfer-Encoding: chunked\r\n",
                "Transfer-Encoding: gzip, chunked\r\n",
                "Bad header without colon\r\n",
                "X: " + "y" * 70_000 + "\r\n",
                "",
            ]
        ),
        st.binary(max_size=200),
    ),
)


def _raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read whatever comes back (answer or EOF)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
        except ConnectionResetError:
            return b""


def test_fuzzed_payloads_never_crash_the_extension(
    make_emulator: MakeEmulator, receiver: Any, build: Build
) -> None:
    name = "e2e-fuzz"
    emulator = make_emulator(
        loki_env(receiver, **{envvars.DISPATCH_MIN_BATCH_SIZE: "10"}), function_name=name, timeout_s=120.0
    )
    invoke_ok(emulator, [{"print": ["warm-up"]}])
    port = listener_port(emulator)
    statuses: list[int] = []

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=_raw_request)
    def fuzz_raw(data: bytes) -> None:
        answer = _raw(port, data)
        # Either no answer (connection closed) or an HTTP answer; never a 5xx, except where
        # the native build's HTTP server (Go's net/http) refuses a request line it cannot
        # parse before the extension's handler sees it: 505 for an unknown protocol version,
        # 501 for an unsupported Transfer-Encoding. Lambda never sends either; what a 5xx
        # risks (Lambda retrying a delivery) cannot follow from them.
        assert not answer or answer.startswith(b"HTTP/1."), answer[:100]
        refused_by_server = build.native and answer[9:12] in (b"501", b"505")
        assert refused_by_server or not answer[9:12].startswith(b"5"), answer[:100]

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=_payload, path=st.sampled_from(["/", "/telemetry", "/x/y?z=1", ""]))
    def fuzz(body: bytes, path: str) -> None:
        statuses.append(_post(port, body, path or "/"))

    # Keep the environment thawed while fuzzing: a frozen listener cannot answer.
    with held_invoke(emulator, [{"print": ["during-fuzz"]}]):
        fuzz()
        fuzz_raw()
        # A well-formed delivery after all that is still answered and accepted.
        assert _post(port, b"[]", "/") == 200

    # The listener acknowledges everything at once (Lambda would otherwise retry and
    # eventually drop); it may answer a malformed body 4xx but never 5xx or hang.
    assert statuses and all(s < 500 for s in statuses), sorted(set(statuses))

    # And the extension still ships the function's real lines afterwards.
    expected = ["warm-up", "during-fuzz"]
    for i in range(3):
        invoke_ok(emulator, [{"burst": {"prefix": f"fz{i}", "count": 10, "width": 20}}])
        expected.extend(burst_lines(f"fz{i}", 10, 20))
    shutdown = emulator.shutdown()
    assert_healthy_extension(emulator, shutdown)
    stored = [e.line for e in function_entries(receiver, name) if e.line in set(expected)]
    losses = [line for line in emulator.extension_stderr() if "lost" in line]
    assert_same_lines(stored, expected, f"real lines after fuzzing (extension said: {losses})")
