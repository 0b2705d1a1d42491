"""Clocks for the local runtime: the wall clock, or a virtual clock a scenario advances."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the runtime and the twins ask of a clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class WallClock:
    """Real time."""

    virtual = False

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)


class VirtualClock:
    """Time that moves only when told to; thread-safe."""

    virtual = True

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current virtual time."""
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        """Move to `when`; time never runs backwards."""
        with self._lock:
            when = when.astimezone(UTC)
            if when < self._now:
                raise ValueError(f"virtual time cannot go back from {self._now} to {when}")
            self._now = when

    def at_least(self, when: datetime) -> datetime:
        """Move forward to `when` unless time is already past it; returns the current time."""
        with self._lock:
            self._now = max(self._now, when.astimezone(UTC))
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` and return the new time."""
        with self._lock:
            self._now += delta
            return self._now
