"""The platform's identities, played locally: managed-identity tokens and App Service authentication.

Tokens are JWTs signed with a per-process HMAC key, so every local server in this process can tell a token it issued from
a forged one. Nothing here is a security boundary in production; it exists so that Tandem's real
credential and role-check code paths run unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

_HEADER = {"alg": "HS256", "typ": "JWT"}


def same(given: str, secret: str) -> bool:
    """A constant-time comparison that any text, not only ASCII, can be put to (a hostile header is not ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), secret.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LocalIdentity:
    """Issues and checks bearer tokens for the managed identity and for signed-in users."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.header_secret = secrets.token_hex(16)  # what IDENTITY_HEADER carries
        self.principal_id = "11111111-2222-4333-8444-555555555555"
        self.tenant_id = "72f988bf-0000-4000-8000-00000000a11d"

    def issue(
        self,
        audience: str,
        *,
        subject: str | None = None,
        name: str | None = None,
        roles: list[str] | None = None,
        lifetime_s: int = 3600,
    ) -> tuple[str, int]:
        """A token for `audience` (a resource URI) and its expiry (epoch seconds): a JWT as Entra ID issues
        (header, claims with issuer, audience and lifetime), signed with this process's HMAC key."""
        now = int(time.time())
        expires = now + lifetime_s
        claims = {
            "aud": audience.rstrip("/"),
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now - 60,
            "exp": expires,
            "tid": self.tenant_id,
            "oid": subject or self.principal_id,
            "name": name or "tandem-function-identity",
            "roles": roles or [],
        }
        signed = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(claims, sort_keys=True).encode())}"
        signature = _b64(hmac.new(self._secret, signed.encode(), hashlib.sha256).digest())
        return f"{signed}.{signature}", expires

    @staticmethod
    def person_id(name: str) -> str:
        """A person's object id: one per name, as Entra gives one per person."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"upn:{name}"))

    def user_token(self, name: str, roles: list[str]) -> str:
        """A signed-in person's token for Tandem's API (audience api://tandem)."""
        return self.issue("api://tandem", subject=self.person_id(name), name=name, roles=roles)[0]

    def validate(self, token: str, audience: str | None = None) -> dict[str, Any] | None:
        """The claims of a token this identity issued, unexpired and for `audience`; None otherwise."""
        signed, _, signature = token.rpartition(".")
        if signed.count(".") != 1:
            return None
        expected = _b64(hmac.new(self._secret, signed.encode(), hashlib.sha256).digest())
        if not same(expected, signature):
            return None
        claims: dict[str, Any] = json.loads(_unb64(signed.split(".")[1]))  # signed by us: well-formed
        if claims["exp"] < time.time():
            return None
        if audience is not None and claims["aud"] != audience.rstrip("/").removesuffix("/.default"):
            return None
        return claims

    def msi_response(self, resource: str) -> dict[str, Any]:
        """The App Service managed-identity endpoint's answer (api-version 2019-08-01)."""
        resource = resource.removesuffix("/.default")
        token, expires = self.issue(resource)
        return {
            "access_token": token,
            "expires_on": str(expires),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.principal_id,
        }

    def answer_msi(self, headers: dict[str, str], query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Serve one managed-identity token request: (status, JSON body). `headers` keys are lower-case."""
        if not same(headers.get("x-identity-header", ""), self.header_secret):
            return 401, {"error": "invalid X-IDENTITY-HEADER"}
        resource = query.get("resource")
        if not resource:
            return 400, {"error": "resource is required"}
        return 200, self.msi_response(resource)

    @staticmethod
    def client_principal(claims: dict[str, Any]) -> str:
        """The X-MS-CLIENT-PRINCIPAL header App Service authentication injects for a signed-in user."""
        principal = {
            "auth_typ": "aad",
            "name_typ": "name",
            "role_typ": "roles",
            "claims": [
                {"typ": "name", "val": claims["name"]},
                {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": claims["oid"]},
                *({"typ": "roles", "val": role} for role in claims.get("roles", [])),
            ],
        }
        return base64.b64encode(json.dumps(principal).encode()).decode()
