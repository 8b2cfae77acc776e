"""Who may push and query: Loki's tenant header and the credentials a gateway in front of it demands."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

#: Tenant every entry belongs to when tenancy is off (Loki's auth_enabled=false uses "fake").
NO_AUTH_TENANT = "fake"


@dataclass(frozen=True)
class Auth:
    #: Like Loki's ``auth_enabled: true``: X-Scope-OrgID required, tenants isolated.
    require_tenant: bool = False
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None

    def error(self, headers: Mapping[str, str]) -> str | None:
        """The 401 message for this request, or None when it may pass."""
        if self.basic_auth is not None or self.bearer_token is not None:
            got = headers.get("authorization", "")
            ok = False
            # Constant-time comparisons: this is test code, but it should not teach bad habits.
            if self.bearer_token is not None and got.startswith("Bearer "):
                ok = hmac.compare_digest(got[7:].encode(), self.bearer_token.encode())
            if not ok and self.basic_auth is not None and got.startswith("Basic "):
                try:
                    user, _, password = base64.b64decode(got[6:], validate=True).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    user, password = "", ""
                ok = hmac.compare_digest(f"{user}:{password}".encode(), ":".join(self.basic_auth).encode())
            if not ok:
                return "unauthorized: missing or wrong credentials"
        if self.require_tenant and not headers.get("x-scope-orgid"):
            return "no org id"
        return None

    def challenge(self) -> tuple[tuple[str, str], ...]:
        """Headers for a 401."""
        return (("WWW-Authenticate", 'Basic realm="loki"'),) if self.basic_auth else ()

    def scope(self, headers: Mapping[str, str]) -> str:
        """The tenant a request acts for. With tenancy off Loki files everything under "fake"."""
        return headers.get("x-scope-orgid", "") if self.require_tenant else NO_AUTH_TENANT

    def query_scope(self, headers: Mapping[str, str]) -> str | None:
        """The tenant a query may see (None: all data, a single-tenant Loki)."""
        return self.scope(headers) if self.require_tenant else None
