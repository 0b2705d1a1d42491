"""Tandem's state in the shape the infra deploys it: no connection string, only identity-based storage settings
(`AzureWebJobsStorage__<service>ServiceUri`), a managed-identity token per call, and Azurite checking the tokens
over HTTPS (`--oauth basic`) as Azure storage with shared keys off does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.azurite import Azurite
from local.tls import LocalCA


@pytest.fixture
def keyless(arm: Any, hub: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Azurite]:
    """An OAuth Azurite and the app settings the infra writes; the ARM twin serves the managed identity."""
    arm()  # IDENTITY_ENDPOINT, IDENTITY_HEADER and the CA bundle point at the twin
    with Azurite(oauth=LocalCA.shared()) as azurite:
        monkeypatch.delenv("AzureWebJobsStorage", raising=False)
        monkeypatch.setenv("AzureWebJobsStorage__credential", "managedidentity")
        for service, uri in azurite.endpoints.items():
            monkeypatch.setenv(f"AzureWebJobsStorage__{service}ServiceUri", uri)
        monkeypatch.setenv("TANDEM_TASK_HUB", hub)
        yield azurite


def test_locks_and_tables_work_with_the_identity_alone(keyless: Azurite, hub: str) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.errors import DependencyError
    from shared.state.lease import Lease
    from shared.state.tables import table

    held = Lease("pair-east-central", wait_s=5)
    with pytest.raises(DependencyError, match="held elsewhere"):
        Lease("pair-east-central", wait_s=0.3)  # a real lease: the second holder waits, then gives up
    held.release()
    Lease("pair-east-central", wait_s=5).release()

    audit = table("failoveraudit")
    audit.upsert_entity({"PartitionKey": "pair", "RowKey": "1", "step": "drain"})
    assert audit.get_entity("pair", "1")["step"] == "drain"

    # The same data seen with the account key, and nothing for a caller without a token.
    with BlobServiceClient.from_connection_string(keyless.connection_string) as blobs:
        assert [b.name for b in blobs.get_container_client(f"{hub}-locks").list_blobs()] == ["pair-east-central"]
    with TableServiceClient.from_connection_string(keyless.connection_string) as tables:
        assert tables.get_table_client(f"{hub}failoveraudit").get_entity("pair", "1")["step"] == "drain"
    with BlobServiceClient(keyless.endpoints["blob"]) as anonymous, pytest.raises(HttpResponseError):
        anonymous.create_container(f"{hub}-anonymous")
