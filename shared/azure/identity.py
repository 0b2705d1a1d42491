"""The function app's managed identity: one credential for ARM and Key Vault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared import settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def default_credential() -> TokenCredential:
    """The user-assigned identity named by AZURE_CLIENT_ID, else the system-assigned one."""
    from azure.identity import ManagedIdentityCredential  # lazy: cold start

    client_id = settings.get(settings.MANAGED_IDENTITY_CLIENT_ID)
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
