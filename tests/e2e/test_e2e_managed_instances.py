"""Lambda Managed Instances: concurrent requests in one environment that is never frozen.

The extension registers for SHUTDOWN only, ships on time and size alone (no INVOKE events,
no runtimeDone), keeps each record's own request id while the requests' records interleave,
and drains at SHUTDOWN. With tenant isolation, ``tenantId`` becomes the structured metadata
``tenant_id``, never a label.
"""

from __future__ import annotations

from typing import Any

from loki_telemetry_extension import envvars

from tests.e2e.conftest import MakeEmulator
from tests.e2e.support import (
    ARRIVAL_TIMEOUT_S,
    assert_healthy_extension,
    assert_no_resent_entries,
    assert_same_lines,
    function_entries,
    loki_env,
    message_of,
    reported_drops,
    wait_until,
)

CONCURRENT = 6
LINES = 40


def _events(tag: str) -> list[dict[str, Any]]:
    return [{"steps": [{"log": [f"{tag}{i}-{n:03d}" for n in range(LINES)], "level": "INFO"}]}
            for i in range(CONCURRENT)]


def _expected(tag: str) -> list[str]:
    return [f"{tag}{i}-{n:03d}" for i in range(CONCURRENT) for n in range(LINES)]


def test_concurrent_requests_ship_on_time_each_line_with_its_own_request_id(
    make_emulator: MakeEmulator, receiver: Any
) -> None:
    # GIVEN a function on Managed Instances, default extension settings
    name = "e2e-mi"
    emulator = make_emulator(loki_env(receiver), function_name=name, managed_instances=True,
                             max_concurrency=CONCURRENT, log_format="JSON")
    # WHEN requests run at once (their log records interleave)
    results = emulator.invoke_many(_events("mi"))
    assert all(r.error is None and r.status == "success" for r in results), results
    expected = _expected("mi")
    # THEN every line reaches Loki before any SHUTDOWN (time-based flushing: nothing freezes) ...
    arrived = wait_until(lambda: len(function_entries(receiver, name)) >= len(expected), ARRIVAL_TIMEOUT_S)
    assert arrived, f"{len(function_entries(receiver, name))} of {len(expected)} lines before SHUTDOWN"
    entries = function_entries(receiver, name)
    assert_same_lines([message_of(e.line) for e in entries], expected, "before SHUTDOWN")
    # ... each tagged with the request that wrote it, never with another one's
    for e in entries:
        i = int(message_of(e.line)[len("mi"):].split("-")[0])
        assert e.metadata.get(envvars.METADATA_REQUEST_ID) == results[i].request_id, e
    # AND SHUTDOWN ends it cleanly, with nothing lost or sent twice
    shutdown = emulator.shutdown()
    assert_healthy_extension(emulator, shutdown)
    stored = [message_of(e.line) for e in function_entries(receiver, name)]
    assert_same_lines(stored, expected, "after SHUTDOWN")
    assert_no_resent_entries(receiver)
    assert reported_drops(emulator) == 0


def test_lines_written_just_before_shutdown_are_drained(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN a long flush interval: only the SHUTDOWN drain can ship these lines
    name = "e2e-mi-drain"
    emulator = make_emulator(loki_env(receiver, **{envvars.LOKI_FLUSH_INTERVAL_MS: "60000"}),
                             function_name=name, managed_instances=True, max_concurrency=CONCURRENT,
                             log_format="JSON")
    results = emulator.invoke_many(_events("drain"))
    assert all(r.error is None for r in results), results
    # WHEN the environment shuts down right away
    shutdown = emulator.shutdown()
    # THEN all of them are in Loki, without waiting for a runtimeDone that never comes
    assert_healthy_extension(emulator, shutdown)
    assert_same_lines([message_of(e.line) for e in function_entries(receiver, name)], _expected("drain"))


def test_tenant_id_is_structured_metadata_not_a_label(make_emulator: MakeEmulator, receiver: Any) -> None:
    # GIVEN tenant isolation, and platform events shipped too
    name = "e2e-mi-tenant"
    emulator = make_emulator(
        loki_env(receiver, **{envvars.LOKI_TELEMETRY_TYPES: "function,platform"}),
        function_name=name, managed_instances=True, max_concurrency=CONCURRENT, log_format="JSON",
        tenancy_config="PER_TENANT",
    )
    # WHEN one tenant's requests run
    results = emulator.invoke_many(_events("tenant"), tenant_ids=["blue"] * CONCURRENT)
    assert all(r.error is None for r in results), results
    shutdown = emulator.shutdown()
    assert_healthy_extension(emulator, shutdown)
    # THEN its log lines and its platform events carry tenant_id=blue as metadata, no label has it
    entries = function_entries(receiver, name)
    assert_same_lines([message_of(e.line) for e in entries], _expected("tenant"))
    assert {e.metadata.get(envvars.METADATA_TENANT_ID) for e in entries} == {"blue"}
    platform = receiver.entries(f'{{function="{name}", type="platform"}}')
    starts = [e for e in platform if e.line.startswith("START ")]
    assert len(starts) == CONCURRENT
    assert all(e.metadata.get(envvars.METADATA_TENANT_ID) == "blue" for e in starts)
    everything = receiver.entries(f'{{function="{name}"}}')
    assert all(envvars.METADATA_TENANT_ID not in e.labels for e in everything)
