"""The time Tandem decides by. In Azure, the wall clock; the local runtime points it at its (virtual) clock so a
simulated day runs through the same code in seconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time (timezone-aware, UTC)."""
    return _source() if _source is not None else datetime.now(UTC)


def set_source(source: Callable[[], datetime] | None) -> None:
    """Take the time from `source` (None: the wall clock again). Used by the local runtime only."""
    global _source
    _source = source


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 for JSON and table columns; None stays None."""
    return value.isoformat() if value else None


def now_iso() -> str:
    """`now()` as ISO 8601."""
    return now().isoformat()
