"""Secret references resolved at run time: an app setting (a Key Vault reference in Azure) or a Key Vault secret URI.

Values are cached for a few minutes so a timer that fires every minute does not call Key Vault every minute, and
are never logged: errors name the reference, not the value.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from shared import USER_AGENT, settings
from shared.errors import ConfigError, DependencyError
from shared.telemetry import get_logger, log_event

if TYPE_CHECKING:
    import ssl

    import httpx
    from azure.core.credentials import TokenCredential

    from shared.config.model import SecretRef

log = get_logger("secrets")
KEY_VAULT_API_VERSION = "7.5"
# the vault's DNS suffix names its cloud: vault.azure.net, vault.usgovcloudapi.net, vault.azure.cn, ...
_VAULT_URI = re.compile(r"^https://(?P<vault>[a-z0-9-]+)\.(?P<suffix>vault\.[a-z.]+)(?P<path>/secrets/.+?)/?$")


def vault_scope(uri: str) -> str:
    """The token scope of the cloud a Key Vault secret URI lives in (its DNS suffix names it)."""
    match = _VAULT_URI.match(uri)
    if match is None:
        raise ConfigError(f"{uri} is not a Key Vault secret URI")
    return f"https://{match['suffix']}/.default"


class SecretResolver:
    """Resolves `SecretRef`s with the managed identity; one per process is enough."""

    def __init__(
        self,
        credential: TokenCredential | None = None,
        *,
        env: Mapping[str, str] | None = None,
        ttl_s: float = 300.0,
        timeout_s: float = 10.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credential = credential
        self._env = env
        self._ttl, self._timeout, self._now = ttl_s, timeout_s, now
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def resolve(self, ref: SecretRef, *, field: str = "secret") -> str:
        """The secret's value; ConfigError if the reference is unset, DependencyError if Key Vault fails."""
        if ref.app_setting is not None:
            value = (os.environ if self._env is None else self._env).get(ref.app_setting)
            if not value:
                raise ConfigError(f"{field}: app setting {ref.app_setting} is not set")
            return value
        uri = str(ref.key_vault_secret)
        with self._lock:
            cached = self._cache.get(uri)
            if cached is not None and self._now() - cached[0] < self._ttl:
                return cached[1]
        value = self._fetch(uri, field)
        with self._lock:
            self._cache[uri] = (self._now(), value)
        return value

    def _fetch(self, uri: str, field: str) -> str:
        import httpx  # lazy: cold start

        from shared.azure.identity import default_credential

        if self._credential is None:
            self._credential = default_credential()
        match = _VAULT_URI.match(uri)
        if match is None:
            raise ConfigError(f"{field}: {uri} is not a Key Vault secret URI")
        local = settings.get(settings.KEY_VAULT_ENDPOINT, env=self._env)
        url = f"{local.rstrip('/')}/{match['vault']}{match['path']}" if local else uri.rstrip("/")
        token = self._credential.get_token(vault_scope(uri)).token
        verify = _trust()
        try:
            response = httpx.get(
                url,
                params={"api-version": KEY_VAULT_API_VERSION},
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
                verify=verify,
            )
        except httpx.HTTPError as exc:
            raise DependencyError(f"{field}: Key Vault secret {uri} could not be read: {type(exc).__name__}") from exc
        if response.status_code != 200:
            code = _error_code(response)
            raise DependencyError(f"{field}: Key Vault answered {response.status_code} {code} for {uri}")
        log_event(log, "secrets.key_vault_read", uri=uri)
        return str(response.json()["value"])


def _trust() -> ssl.SSLContext:
    import ssl

    bundle = os.environ.get("REQUESTS_CA_BUNDLE")  # what azure-core honours too; unset in Azure
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "error"
