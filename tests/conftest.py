"""Shared fixtures: one Azurite per test session (the one scripts/test started, or a private one)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.azurite import ENV_NAME, Azurite

EVENTS = Path(__file__).parent / "events"


def load_event(name: str) -> Any:
    """A real published payload from tests/events."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def storage() -> Iterator[str]:
    """A storage connection string for a running Azurite."""
    existing = os.environ.get(ENV_NAME)
    if existing and "127.0.0.1" in existing:
        yield existing
        return
    with Azurite() as azurite:
        yield azurite.connection_string


@pytest.fixture
def hub() -> str:
    """A task hub of its own for each test, so tests never see each other's state."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def arm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start ARM twins on a virtual clock: arm(seed_dict) -> ArmTwin; azure-identity is pointed at the last one."""
    from local.runtime.clock import VirtualClock
    from local.twins.arm import ArmTwin, Seed

    started: list[Any] = []

    def start(seed: dict[str, Any] | None = None, **options: Any) -> Any:
        options.setdefault("clock", VirtualClock())
        twin = ArmTwin(Seed.model_validate(seed) if seed is not None else None, **options).start()
        started.append(twin)
        for name, value in twin.identity_settings.items():
            monkeypatch.setenv(name, value)
        return twin

    yield start
    for twin in started:
        twin.close()
