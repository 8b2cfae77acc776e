"""https: the one connection helper (http11.connect) verifies the server against the system's
CAs and its name, for Loki pushes and for the credential fetch alike."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from loki_telemetry_extension import http11
from loki_telemetry_extension.loki_client import LokiClient


def _self_signed(d: Path, names: str) -> Path:
    """A self-signed certificate for ``names`` (a subjectAltName list), made with the openssl CLI."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a test certificate"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test",
         "-addext", f"subjectAltName={names}", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    return d


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _self_signed(tmp_path_factory.mktemp("tls"), "IP:127.0.0.1,DNS:localhost")


@pytest.fixture(scope="module")
def other_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _self_signed(tmp_path_factory.mktemp("tls-other"), "DNS:other.example")


@pytest.fixture
def https_server(cert: Path) -> Iterator[tuple[int, list[bytes]]]:
    yield from _serve(cert)


def _serve(cert: Path) -> Iterator[tuple[int, list[bytes]]]:
    bodies: list[bytes] = []

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert / "cert.pem", cert / "key.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield server.server_address[1], bodies
    finally:
        server.shutdown()
        server.server_close()


def test_push_over_https_to_a_trusted_server(
    https_server: tuple[int, list[bytes]], cert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, bodies = https_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert / "cert.pem"))  # the system's CAs, as far as ssl knows
    client = LokiClient(f"https://127.0.0.1:{port}/loki/api/v1/push")
    assert client.send(b"one", timeout=5).status == 204
    assert client.send(b"two", timeout=5).status == 204  # kept alive
    assert bodies == [b"one", b"two"]


def test_an_untrusted_certificate_is_refused(https_server: tuple[int, list[bytes]]) -> None:
    port, bodies = https_server
    client = LokiClient(f"https://127.0.0.1:{port}/loki/api/v1/push")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.send(b"secret", timeout=5)
    assert bodies == []


def test_the_certificate_must_name_the_host(other_cert: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(other_cert / "cert.pem"))  # trusted, but for another name
    for port, _ in _serve(other_cert):
        with pytest.raises(ssl.SSLCertVerificationError):
            http11.connect(("127.0.0.1", port), 5, tls=True)
