"""Client for the Lambda Extensions API (register, next, errors)."""

from __future__ import annotations

from . import http11

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

API_VERSION = "2020-01-01"
#: Header carrying the name on register and the id on every later call.
NAME_HEADER = "Lambda-Extension-Name"
ID_HEADER = "Lambda-Extension-Identifier"
#: Only the events that matter to a log shipper; SHUTDOWN is what lets us drain.
REGISTER_BODY = b'{"events": ["INVOKE", "SHUTDOWN"]}'
#: Lambda Managed Instances accept SHUTDOWN only (INVOKE: 403 Extension.InvalidEventType).
REGISTER_BODY_SHUTDOWN_ONLY = b'{"events": ["SHUTDOWN"]}'
#: register/error calls answer at once; ``next`` blocks until an event and has no timeout.
CALL_TIMEOUT_S = 5.0


class ExtensionsAPIError(OSError):
    """The Extensions API answered something other than 200."""


class ExtensionsAPI:
    def __init__(self, runtime_api: str) -> None:
        self._address = http11.split_hostport(runtime_api, 80)
        self._base = f"/{API_VERSION}/extension"
        self.extension_id = ""

    def register(self, name: str, *, shutdown_only: bool = False) -> str:
        """Register for INVOKE and SHUTDOWN (SHUTDOWN only: ``shutdown_only``); returns (and
        keeps) the extension id."""
        resp = http11.request(
            self._address,
            "POST",
            f"{self._base}/register",
            headers={NAME_HEADER: name, "Content-Type": "application/json"},
            body=REGISTER_BODY_SHUTDOWN_ONLY if shutdown_only else REGISTER_BODY,
            timeout=CALL_TIMEOUT_S,
        )
        if resp.status != 200 or ID_HEADER.lower() not in resp.headers:
            raise ExtensionsAPIError(f"register answered {resp.status}: {resp.body[:200]!r}")
        self.extension_id = resp.headers[ID_HEADER.lower()]
        return self.extension_id

    def next_event(self, after_send: Callable[[], object] | None = None) -> dict[str, Any]:
        """Block until the next INVOKE or SHUTDOWN event (``after_send``: see http11.request)."""
        resp = http11.request(
            self._address, "GET", f"{self._base}/event/next", headers={ID_HEADER: self.extension_id},
            after_send=after_send,
        )
        import json  # after the wait: keeps it out of the time to the first next

        if resp.status != 200:
            raise ExtensionsAPIError(f"next answered {resp.status}: {resp.body[:200]!r}")
        event = json.loads(resp.body)
        if not isinstance(event, dict):
            raise ExtensionsAPIError(f"next returned a non-object event: {resp.body[:200]!r}")
        return event
