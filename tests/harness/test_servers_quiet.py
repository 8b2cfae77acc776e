"""Both harness servers stay quiet when a peer vanishes mid-request.

Extensions are SIGKILLed at the shutdown deadline and outages cut keep-alive sockets, so a
reset connection is routine; a traceback on stderr for it would bury real errors.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from harness.lambda_emulator._api import ApiServer
from harness.loki_receiver import LokiReceiver


def _reset_mid_request(port: int) -> None:
    """Half a request on a kept-alive connection, then RST (SO_LINGER 0), as a killed process does.

    A first complete request makes sure the server's handler is already reading the next one
    from this connection when the reset arrives (no race with accept).
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/ready")
    conn.getresponse().read()
    sock = conn.sock
    assert sock is not None
    sock.sendall(b"POST /loki/api/v1/pu")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _handlers_done(deadline_s: float = 5.0) -> bool:
    """Wait (bounded) until no request-handler thread is left."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not any("process_request_thread" in t.name for t in threading.enumerate()):
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(params=["loki_receiver", "lambda_api"])
def server_port(request: pytest.FixtureRequest) -> Iterator[int]:
    if request.param == "loki_receiver":
        with LokiReceiver() as rx:
            yield rx.port
    else:
        api = ApiServer(lambda: None)
        api.start()
        try:
            yield api.server_port
        finally:
            api.stop()


def test_a_reset_connection_prints_no_traceback(server_port: int, capfd: pytest.CaptureFixture[str]) -> None:
    # GIVEN a running server; WHEN clients vanish mid-request
    for _ in range(3):
        _reset_mid_request(server_port)
    assert _handlers_done()
    # THEN nothing is printed for it
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
