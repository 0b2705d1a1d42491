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
        clock.set_source(twin.clock.now)  # Tandem reads ARM's timestamps against the same time, as in Azure
        return twin

    from shared import clock

    yield start
    clock.set_source(None)
    for twin in started:
        twin.close()


# ----------------------------------------------------------------- tests that read what the whole suite did

_WHOLE_SUITE = pytest.StashKey[bool]()
_DESELECTED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run `after_suite` tests last, and note whether this run collected every test module of tests/."""
    last = [item for item in items if item.get_closest_marker("after_suite")]
    items[:] = [item for item in items if not item.get_closest_marker("after_suite")] + last
    modules = {Path(str(item.path)).resolve() for item in items}
    every = {p.resolve() for p in Path(__file__).parent.rglob("test_*.py")}
    config.stash[_WHOLE_SUITE] = (
        every <= modules
        and not config.getoption("keyword")
        and not config.getoption("markexpr")
        and not config.getoption("lf", False)
        and not config.getoption("deselect")
    )


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Anything deselected (-k, -m, --deselect) means this is not the whole suite."""
    if items:
        items[0].config.stash[_DESELECTED] = True


@pytest.fixture
def whole_suite(request: pytest.FixtureRequest) -> None:
    """Skip unless this run is the whole suite (scripts/test with no selection)."""
    if not request.config.stash.get(_WHOLE_SUITE, False) or request.config.stash.get(_DESELECTED, False):
        pytest.skip("reads what the whole suite did: run scripts/test without a selection")
