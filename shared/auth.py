"""Who is calling: the signed-in principal App Service authentication puts on each request, and its app roles.

Without platform authentication (WEBSITE_AUTH_ENABLED) the principal header could be forged by anyone, so a
role-gated call is refused rather than trusted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared import settings
from shared.errors import AuthorizationError

MAX_PRINCIPAL = 16 * 1024  # a principal with a few dozen claims is a few kilobytes


@dataclass(frozen=True)
class Caller:
    """The signed-in caller: Entra object id, display name and app roles."""

    id: str
    name: str
    roles: frozenset[str]


def principal(headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The decoded `x-ms-client-principal` header, or None when absent or not a principal."""
    header = headers.get("x-ms-client-principal")
    if not header or len(header) > MAX_PRINCIPAL:
        return None
    try:
        decoded = json.loads(base64.b64decode(header, validate=True))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("claims", []), list):
        return None
    return decoded


def caller(headers: Mapping[str, str]) -> Caller:
    """The caller as the platform described them (empty when nobody is signed in)."""
    found = principal(headers) or {}
    claims = [c for c in found.get("claims", []) if isinstance(c, dict)]
    role_type = found.get("role_typ", "roles")
    name = next((str(c.get("val")) for c in claims if c.get("typ") == found.get("name_typ")), "")
    roles = frozenset(str(c.get("val")) for c in claims if c.get("typ") in (role_type, "roles"))
    return Caller(headers.get("x-ms-client-principal-id", "")[:64], name[:256], roles)


def authorize(headers: Mapping[str, str], role: str) -> Caller:
    """The signed-in caller holding `role`; AuthorizationError (401 or 403) otherwise."""
    if not settings.flag(settings.AUTH_ENABLED):
        raise AuthorizationError(
            "App Service authentication must be enabled for this call", title="Authentication is off", http_status=403
        )
    if principal(headers) is None:
        raise AuthorizationError("sign in with Microsoft Entra ID", title="Not signed in", http_status=401)
    who = caller(headers)
    if role not in who.roles:
        raise AuthorizationError(f"this call needs the app role {role}", title="Missing role", http_status=403)
    return who
