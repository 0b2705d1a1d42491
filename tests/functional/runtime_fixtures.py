"""Start the local runtime on the fidelity test app with a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from local.runtime import LocalHost, VirtualClock
from tests.apps import runtime_app

START = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


@contextmanager
def running(storage: str, hub: str, clock: VirtualClock | None = None, **options: Any) -> Iterator[LocalHost]:
    """A started LocalHost on runtime_app; the app's recorders are reset first."""
    for values in runtime_app.seen.values():
        values.clear()
    runtime_app.flaky_failures["left"] = 0
    runtime_app.nondeterministic["branch"] = "a"
    options.setdefault("settings", {"TEST_SCHEDULE": "0 */5 * * * *"})
    host = LocalHost("tests.apps.runtime_app", storage=storage, hub=hub, clock=clock or VirtualClock(START), **options)
    host.start()
    try:
        yield host
    finally:
        host.close()
