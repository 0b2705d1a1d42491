"""A blob lease as a lock across instances (one failover per region pair at a time)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from shared import settings
from shared.errors import DependencyError


@contextlib.contextmanager
def held(name: str, *, wait_s: float = 20.0, lease_s: int = 15) -> Iterator[None]:
    """Hold the lease on blob `<hub>-locks/<name>` while the block runs; DependencyError if it stays taken."""
    from azure.core.exceptions import HttpResponseError, ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    connection = settings.get(settings.STORAGE)
    if not connection:
        raise DependencyError(f"app setting {settings.STORAGE} is not set: no lock storage")
    service = BlobServiceClient.from_connection_string(connection)
    container = service.get_container_client(f"{settings.get(settings.TASK_HUB)}-locks".lower())
    try:
        container.create_container()
    except ResourceExistsError:
        pass
    blob = container.get_blob_client(name)
    try:
        blob.upload_blob(b"", overwrite=False)
    except ResourceExistsError:
        pass
    give_up = time.monotonic() + wait_s
    while True:
        try:
            lease = blob.acquire_lease(lease_duration=lease_s)
            break
        except HttpResponseError as exc:
            if exc.status_code != 409 or time.monotonic() > give_up:
                raise DependencyError(f"lock {name} is held elsewhere") from exc
            time.sleep(0.2)
    try:
        yield
    finally:
        lease.release()
        service.close()
