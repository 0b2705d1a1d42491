"""A blob lease as a lock across instances: one failover per region pair, one autoscale evaluation per pool."""

from __future__ import annotations

import threading
import time
from typing import Any

from shared import settings
from shared.errors import DependencyError, LockHeldError

_containers: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def _container() -> Any:
    """The `<hub>-locks` container of this deployment, its client shared per process (thread-safe)."""
    found = settings.storage("blob")
    if found is None:
        raise DependencyError(f"app setting {settings.STORAGE} is not set: no lock storage")
    where, identity = found
    name = f"{settings.get(settings.TASK_HUB)}-locks".lower()
    with _lock:
        cached = _containers.get((where, name))
        if cached is not None:
            return cached
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        if identity:
            from shared.azure.identity import default_credential

            service = BlobServiceClient(where, credential=default_credential())
        else:
            service = BlobServiceClient.from_connection_string(where)
        container = service.get_container_client(name)
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        _containers[(where, name)] = container
        return container


class Lease:
    """A held lease on blob `<hub>-locks/<name>`; `release()` when done. Acquiring blocks up to `wait_s`
    (0: one try); from async code, acquire it in a thread (asyncio.to_thread) so the event loop keeps running."""

    def __init__(self, name: str, *, wait_s: float = 30.0, lease_s: int = 60) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

        try:
            blob = _container().get_blob_client(name)
        except HttpResponseError as exc:
            raise DependencyError(f"lock {name}: storage answered {exc.status_code}") from exc
        give_up = time.monotonic() + wait_s
        while True:
            try:
                self._lease: Any = blob.acquire_lease(lease_duration=lease_s)
                return
            except ResourceNotFoundError:  # the first use of this lock: create its blob, then take it
                try:
                    blob.upload_blob(b"", overwrite=False)
                except ResourceExistsError:
                    pass  # another caller created it (and may hold it already)
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise DependencyError(f"lock {name}: storage answered {exc.status_code}") from exc
                if time.monotonic() >= give_up:
                    raise LockHeldError(f"lock {name} is held elsewhere") from exc
                time.sleep(0.1)

    def release(self) -> None:
        """Let the next holder in."""
        from azure.core.exceptions import HttpResponseError

        try:
            self._lease.release()
        except HttpResponseError:
            pass  # it expired and may be someone else's now: nothing of ours to release


def try_lease(name: str, *, wait_s: float = 0.0, lease_s: int = 60) -> Lease | None:
    """A lease, or None when someone else holds it (other storage failures raise DependencyError)."""
    try:
        return Lease(name, wait_s=wait_s, lease_s=lease_s)
    except LockHeldError:
        return None
