"""One Loki push request per ``send`` over a kept-alive connection (http or https).

Our own small client over socket/ssl rather than ``http.client`` (which imports
``email``: ~30 ms on every cold start). ``ssl`` is imported only for https URLs.
"""

from __future__ import annotations

import socket

from . import http11

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

USER_AGENT = "loki-telemetry-extension/0.1"


class LokiClient:
    def __init__(self, url: str, *, headers: dict[str, str] | None = None) -> None:
        scheme, _, rest = url.partition("://")
        self.tls = scheme.lower() == "https"
        authority, slash, path = rest.partition("/")
        userinfo, at, hostport = authority.rpartition("@")
        self.host, self.port = http11.split_hostport(hostport, 443 if self.tls else 80)
        self.path = "/" + path if slash else "/"
        default_port = 443 if self.tls else 80
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host_header if self.port == default_port else f"{host_header}:{self.port}"
        self.headers: dict[str, str] = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        if at and userinfo:
            import base64
            from urllib.parse import unquote  # cheap: urllib.parse does not import email

            user, _, pw = userinfo.partition(":")
            token = base64.b64encode(f"{unquote(user)}:{unquote(pw)}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.headers.update(headers or {})
        self._sock: socket.socket | None = None
        self._rfile: Any = None
        self._ssl_context: Any = None

    def close(self) -> None:
        if self._rfile is not None:
            try:  # noqa: SIM105 - contextlib costs import time
                self._rfile.close()
            except OSError:
                pass
        if self._sock is not None:
            try:  # noqa: SIM105 - contextlib costs import time
                self._sock.close()
            except OSError:
                pass
        self._sock = self._rfile = None

    def _connect(self, timeout: float) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                if self._ssl_context is None:
                    import ssl

                    self._ssl_context = ssl.create_default_context()
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._rfile = sock.makefile("rb")

    def send(self, body: bytes, *, timeout: float) -> http11.Response:
        """POST one gzip'd push body; raises OSError on connection/TLS/timeouts.

        A kept-alive connection may have died while the environment was frozen (or the
        server closed it): a failure on a *reused* connection is retried once at once on
        a fresh one. That is safe: Loki de-duplicates identical entries.
        """
        reused = self._sock is not None
        try:
            return self._send_once(body, timeout)
        except OSError:
            self.close()
            if not reused:
                raise
        return self._send_once(body, timeout)

    def _send_once(self, body: bytes, timeout: float) -> http11.Response:
        if self._sock is None:
            self._connect(timeout)
        assert self._sock is not None
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(http11.encode_request("POST", self.path, self.host_header, self.headers, body))
            resp = http11.read_response(self._rfile)
        except BaseException:
            self.close()
            raise
        delimited = "content-length" in resp.headers or "chunked" in resp.headers.get("transfer-encoding", "")
        if resp.headers.get("connection", "").lower() == "close" or (
                not delimited and resp.status not in (204, 304)):
            self.close()  # body was delimited by EOF: the connection is finished
        return resp
