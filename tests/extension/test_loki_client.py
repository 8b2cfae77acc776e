"""loki_client: one request per send, total time bound, keep-alive reuse and recovery."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from ext_fakes import FakeLoki
from loki_telemetry_extension.loki_client import LokiClient


def _server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


def _drip(conn: socket.socket) -> None:
    """Read the request, then answer one byte every 100 ms (each recv succeeds: a per-read
    timeout would never fire)."""
    conn.recv(65536)
    try:
        for b in b"HTTP/1.1 204 No Content\r\nX-Padding: " + b"x" * 200:
            conn.sendall(bytes([b]))
            time.sleep(0.1)  # the slow peer under test, not synchronisation
    except OSError:
        pass
    finally:
        conn.close()


@pytest.fixture
def drip_port() -> Iterator[int]:
    yield from _server(_drip)


def test_send_timeout_is_a_total_not_per_read(drip_port: int) -> None:
    client = LokiClient(f"http://127.0.0.1:{drip_port}/loki/api/v1/push")
    start = time.monotonic()
    with pytest.raises(OSError):
        client.send(b"x", timeout=0.5)
    assert time.monotonic() - start < 0.5 + 0.3  # generous bound: 0.5 s is the budget


def test_headers_auth_from_url_and_extra_headers(loki: FakeLoki) -> None:
    url = loki.url.replace("http://", "http://us%40er:p%3Ass@")
    client = LokiClient(url, headers={"X-Scope-OrgID": "t1", "Authorization": "Bearer override"})
    assert (
        client.send(
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00", timeout=5
        ).status
        == 204
    )
    h = loki.requests[0].headers
    assert h["x-scope-orgid"] == "t1" and h["authorization"] == "Bearer override"
    assert h["content-encoding"] == "gzip" and h["content-type"] == "application/json"
    assert loki.requests[0].path == "/loki/api/v1/push"


def test_basic_auth_from_url_userinfo(loki: FakeLoki) -> None:
    client = LokiClient(loki.url.replace("http://", "http://us%40er:p%3Ass@"))
    assert client.headers["Authorization"] == "Basic dXNAZXI6cDpzcw=="  # us@er:p:ss


def _close_after_each(conn: socket.socket) -> None:
    """Answers one request per connection, then closes without saying so (like an idle
    timeout or a connection that died while the environment was frozen)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < n:
        body += conn.recv(65536)
    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    conn.close()


def test_dead_kept_alive_connection_is_replaced_transparently() -> None:
    it = _server(_close_after_each)
    port = next(it)
    try:
        client = LokiClient(f"http://127.0.0.1:{port}/p")
        assert client.send(b"one", timeout=5).status == 204
        assert client.send(b"two", timeout=5).status == 204  # first attempt hits the closed socket
        assert client.send(b"three", timeout=5).status == 204
    finally:
        for _ in it:
            pass


def test_keep_alive_reuses_one_connection(loki: FakeLoki) -> None:
    client = LokiClient(loki.url)
    for _ in range(3):
        assert (
            client.send(
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00", timeout=5
            ).status
            == 204
        )
    assert client._sock is not None
    ports = {client._sock.getsockname()[1]}
    assert len(ports) == 1 and len(loki.requests) == 3


def test_ipv6_and_default_ports() -> None:
    c = LokiClient("https://[::1]/loki/api/v1/push")
    assert (c.host, c.port, c.tls, c.host_header) == ("::1", 443, True, "[::1]")
    c = LokiClient("http://logs.example:8080/x")
    assert (c.host, c.port, c.tls, c.host_header, c.path) == (
        "logs.example",
        8080,
        False,
        "logs.example:8080",
        "/x",
    )


def test_user_agent_names_the_one_version(loki: FakeLoki) -> None:
    import re
    from pathlib import Path

    from loki_telemetry_extension.envvars import EXTENSION_VERSION

    # The package takes its version from envvars.py (hatch's regex version source): one constant.
    root = Path(__file__).resolve().parents[2]
    pyproject = (root / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    section = pyproject.split("[tool.hatch.version]", 1)[1].split("\n[", 1)[0]
    path = re.search(r'^path = "([^"]+)"', section, re.M)
    pattern = re.search(r"^pattern = '([^']+)'", section, re.M)
    assert path is not None and pattern is not None
    m = re.search(pattern.group(1), (root / path.group(1)).read_text(), re.M)
    assert m is not None and m.group("version") == EXTENSION_VERSION
    import gzip

    LokiClient(loki.url).send(gzip.compress(b"{\"streams\": []}"), timeout=5)
    assert loki.requests[0].headers["user-agent"] == f"loki-telemetry-extension/{EXTENSION_VERSION}"
