"""One Loki push request per ``send`` over a kept-alive connection (http or https).

Our own small client over socket/ssl rather than ``http.client`` (which imports
``email``: ~30 ms on every cold start). ``ssl`` is imported only for https URLs.
"""

from __future__ import annotations

import time

from . import http11
from .envvars import EXTENSION_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

USER_AGENT = f"loki-telemetry-extension/{EXTENSION_VERSION}"


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
        self._sock: Any = None
        self._rfile: Any = None
        self._ssl_context: Any = None

    def close(self) -> None:
        if self._sock is not None:
            try:  # noqa: SIM105 - contextlib costs import time
                self._sock.close()
            except OSError:
                pass
        self._sock = self._rfile = None

    def _connect(self, deadline: float) -> None:
        if self.tls and self._ssl_context is None:
            import ssl

            self._ssl_context = ssl.create_default_context()  # kept: reconnects reuse its session cache
        sock = http11.connect((self.host, self.port), None, tls=self.tls, ssl_context=self._ssl_context,
                              deadline=deadline)
        self._sock = sock
        self._rfile = _DeadlineReader(sock)

    def send(self, body: bytes, *, timeout: float) -> http11.Response:
        """POST one gzip'd push body within ``timeout`` seconds *in total*.

        Raises OSError on connection/TLS errors and timeouts. Every step (connect, TLS,
        send, each read, the second attempt below) gets only what is left of the time.
        A kept-alive connection may have died while the environment was frozen (or the
        server closed it): a failure on a *reused* connection is retried once on a fresh
        one if time is left. That is safe: Loki de-duplicates identical entries.
        """
        deadline = time.monotonic() + timeout
        reused = self._sock is not None
        try:
            return self._send_once(body, deadline)
        except OSError:
            self.close()
            if not reused or deadline - time.monotonic() <= 0:
                raise
        return self._send_once(body, deadline)

    def _send_once(self, body: bytes, deadline: float) -> http11.Response:
        if self._sock is None:
            self._connect(deadline)
        assert self._sock is not None and self._rfile is not None
        try:
            self._sock.settimeout(_left(deadline))  # sendall: a total, not per chunk (3.5+)
            self._sock.sendall(http11.encode_request("POST", self.path, self.host_header, self.headers, body))
            self._rfile.deadline = deadline
            resp = http11.read_response(self._rfile)
        except BaseException:
            self.close()
            raise
        delimited = "content-length" in resp.headers or "chunked" in resp.headers.get("transfer-encoding", "")
        if resp.headers.get("connection", "").lower() == "close" or (
                not delimited and resp.status not in (204, 304)):
            self.close()  # body was delimited by EOF: the connection is finished
        return resp


_left = http11._left


class _DeadlineReader(http11.SocketReader):
    """A socket reader whose every ``recv`` is bounded by one absolute deadline."""

    __slots__ = ("deadline",)

    def __init__(self, sock: Any) -> None:
        super().__init__(sock)
        self.deadline = float("inf")

    def _fill(self) -> bool:
        self._sock.settimeout(_left(self.deadline))
        return super()._fill()
