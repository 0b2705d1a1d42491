"""A blob lease as a lock across instances (one failover per region pair at a time)."""

from __future__ import annotations

import time
from typing import Any

from shared import settings
from shared.errors import DependencyError


class Lease:
    """A held lease on blob `<hub>-locks/<name>`; `release()` when done. Acquiring blocks: from async code,
    acquire it in a thread (asyncio.to_thread) so the event loop keeps running."""

    def __init__(self, name: str, *, wait_s: float = 30.0, lease_s: int = 60) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        found = settings.storage("blob")
        if found is None:
            raise DependencyError(f"app setting {settings.STORAGE} is not set: no lock storage")
        where, identity = found
        if identity:
            from shared.azure.identity import default_credential

            self._service = BlobServiceClient(where, credential=default_credential())
        else:
            self._service = BlobServiceClient.from_connection_string(where)
        container = self._service.get_container_client(f"{settings.get(settings.TASK_HUB)}-locks".lower())
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        blob = container.get_blob_client(name)
        if not blob.exists():
            try:
                blob.upload_blob(b"", overwrite=False)
            except HttpResponseError:
                pass  # another caller created (and may already hold) it
        give_up = time.monotonic() + wait_s
        while True:
            try:
                self._lease: Any = blob.acquire_lease(lease_duration=lease_s)
                return
            except HttpResponseError as exc:
                if exc.status_code != 409 or time.monotonic() > give_up:
                    self._service.close()
                    raise DependencyError(f"lock {name} is held elsewhere") from exc
                time.sleep(0.1)

    def release(self) -> None:
        """Let the next holder in."""
        from azure.core.exceptions import HttpResponseError

        try:
            self._lease.release()
        except HttpResponseError:
            pass  # it expired (60 s) and may be someone else's now: nothing of ours to release
        finally:
            self._service.close()
