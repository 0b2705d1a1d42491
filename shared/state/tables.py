"""Table storage: one client per table per process, from AzureWebJobsStorage (a connection string locally,
identity-based `AzureWebJobsStorage__accountName` / `__tableServiceUri` in Azure, where shared keys are off)."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from shared import settings
from shared.errors import ConfigError

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_clients: dict[tuple[str, str], TableClient] = {}
_lock = threading.Lock()


def table(name: str) -> TableClient:
    """The table `name` of this deployment (prefixed with the task hub name, so deployments sharing a storage
    account keep apart), created on first use; cached per process (the client is thread-safe)."""
    name = f"{settings.get(settings.TASK_HUB)}{name}"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", name):
        raise ValueError(f"invalid table name {name!r} (the task hub name must be letters and digits)")
    found = settings.storage("table")
    if found is None:
        raise ConfigError(f"app setting {settings.STORAGE} (or {settings.STORAGE}__accountName) is not set")
    where, identity = found
    key = (where, name)
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        from azure.core.exceptions import ResourceExistsError
        from azure.data.tables import TableServiceClient

        if not identity:
            service = TableServiceClient.from_connection_string(where)
        else:
            from shared.azure.identity import default_credential

            service = TableServiceClient(where, credential=default_credential())
        try:
            service.create_table(name)
        except ResourceExistsError:
            pass
        client = service.get_table_client(name)  # shares the service's credential and pipeline
        _clients[key] = client
        return client


def safe_key(text: str) -> str:
    """A PartitionKey/RowKey from any text: the characters Table storage forbids (/ \\ # ?) become '|'."""
    return re.sub(r"[/\\#?\x00-\x1f\x7f]", "|", text)
