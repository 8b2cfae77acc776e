"""Structured metadata against the real Loki servers (2.7.7, 2.9.17, 3.4.6): every line is
stored exactly once, with metadata where the version keeps it and folded into the line where
it does not, and the answer is remembered after the first push."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from ext_fakes import fn, platform
from loki_telemetry_extension.dispatcher import Dispatcher, stream_labels
from loki_telemetry_extension.loki_client import LokiClient
from loki_telemetry_extension.records import RecordConverter

from harness.real_loki import VERSIONS, RealLoki

ERROR_LINE = "[ERROR]\t2024-03-05T06:07:08.123Z\tr-1\tfailed"


def _dispatcher(url: str, function: str) -> Dispatcher:
    client = LokiClient(url)
    d = Dispatcher(
        converter=RecordConverter(ship_platform=False, ship_extension=False, max_line_bytes=256_000),
        send=lambda body, timeout: client.send(body, timeout=timeout),
        stream_labels=stream_labels(function, ()),
        batch_size=1000,
        flush_interval_s=60.0,
        max_buffer_bytes=1 << 20,
        url_for_messages=url,
    )
    d.set_deadline(time.monotonic() + 30)
    return d


def _deliver(d: Dispatcher, *items: dict[str, Any]) -> None:
    d.accept(json.dumps(list(items)).encode())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_line_stored_once_on_every_real_loki(real_loki: dict[str, RealLoki], version: str) -> None:
    if version not in real_loki:
        pytest.skip(f"Loki {version} binary absent")
    loki = real_loki[version]
    function = f"meta-{version.replace('.', '')}-{uuid.uuid4().hex[:8]}"
    d = _dispatcher(loki.push_url, function)
    # GIVEN lines without metadata, with a request id, and with a level the line already shows
    _deliver(d, fn("plain one"), platform("start", {"requestId": "r-1"}), fn("tagged one"),
             fn(ERROR_LINE))
    d._converter.current_request_id = None
    _deliver(d, fn("plain two"))
    # WHEN pushed (first push: the extension learns what this Loki accepts)
    assert d.flush(time.monotonic() + 20)
    _deliver(d, platform("start", {"requestId": "r-2"}), fn("tagged two"))
    assert d.flush(time.monotonic() + 20)
    # THEN every line is stored exactly once
    now = time.time_ns()
    stored = loki.entries(f'{{function="{function}"}}', start_ns=now - 600 * 10**9, end_ns=now + 60 * 10**9)
    if loki.structured_metadata:
        assert d.metadata_allowed is True
        assert sorted(e.line for e in stored) == sorted(
            ["plain one", "tagged one", ERROR_LINE, "plain two", "tagged two"])
        # Loki 3 adds its own detected_level; compare the keys the extension sets
        ours = ("request_id", "level", "tenant_id")
        by_line = {e.line: {k: v for k, v in e.metadata.items() if k in ours} for e in stored}
        assert by_line[ERROR_LINE] == {"request_id": "r-1", "level": "ERROR"}
        assert by_line["tagged one"] == {"request_id": "r-1"}
        assert by_line["tagged two"] == {"request_id": "r-2"}
    else:
        assert d.metadata_allowed is False
        assert sorted(e.line for e in stored) == sorted(
            ["plain one", "tagged one request_id=r-1", ERROR_LINE,
             "plain two", "tagged two request_id=r-2"])
    assert not any(d.stats.drops().values())
