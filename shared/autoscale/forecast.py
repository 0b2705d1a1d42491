"""Each pool's logon arrival curve, learned from what Tandem observed, and the forecast the planner reads.

History is kept per local day in 5-minute slots: logons (new sessions) and departures (sessions that ended).
The forecast for a slot is the mean over comparable past days (the same weekday when there are at least
three of them, else all days of the same kind: working day or weekend/holiday) plus one standard deviation,
so an ordinary day is covered and a surprise is left to the surge rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.autoscale.planner import Forecast

SLOT_MINUTES = 5
SLOTS = 24 * 60 // SLOT_MINUTES
KEEP_DAYS = 35


@dataclass
class DayCounts:
    """One local day of one pool: logons and departures per slot."""

    arrivals: list[int] = field(default_factory=lambda: [0] * SLOTS)
    departures: list[int] = field(default_factory=lambda: [0] * SLOTS)


@dataclass
class ArrivalHistory:
    """A pool's recorded days (local dates)."""

    days: dict[date, DayCounts] = field(default_factory=dict)

    def record(self, local: datetime, arrivals: int, departures: int) -> None:
        """Add what was observed in the minute starting at `local` (pool-local time)."""
        day = self.days.setdefault(local.date(), DayCounts())
        slot = (local.hour * 60 + local.minute) // SLOT_MINUTES
        day.arrivals[slot] += max(0, arrivals)
        day.departures[slot] += max(0, departures)
        cutoff = local.date() - timedelta(days=KEEP_DAYS)
        for old in [d for d in self.days if d < cutoff]:
            del self.days[old]

    def comparable(self, today: date, holidays: Iterable[date] = ()) -> list[DayCounts]:
        """Past days like `today`: the same weekday if there are three, else the same kind of day."""
        off = set(holidays)

        def kind(d: date) -> bool:
            return d.weekday() >= 5 or d in off

        past = sorted((d for d in self.days if d < today), reverse=True)
        same_weekday = [d for d in past if d.weekday() == today.weekday() and kind(d) == kind(today)][:4]
        chosen = same_weekday if len(same_weekday) >= 3 else [d for d in past if kind(d) == kind(today)][:10]
        return [self.days[d] for d in chosen]


def _slot_value(days: list[DayCounts], attr: str, slot: int, spread: float) -> float:
    if not days:
        return 0.0
    values: list[float] = [getattr(d, attr)[slot] for d in days]
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return mean + spread * sd


def build_forecast(
    history: ArrivalHistory,
    local: datetime,
    *,
    horizon_minutes: int = 60,
    observed_rate: float = 0.0,
    incoming: int = 0,
    holidays: Iterable[date] = (),
) -> Forecast:
    """The forecast at `local` (pool-local time): expected net sessions per minute ahead, and the rates."""
    days = history.comparable(local.date(), holidays)
    minute_of_day = local.hour * 60 + local.minute
    cache: dict[int, float] = {}

    def net(slot: int) -> float:  # arrivals padded by one deviation; departures are not (fewer leaving is safer)
        if slot not in cache:
            cache[slot] = _slot_value(days, "arrivals", slot, 1.0) - _slot_value(days, "departures", slot, 0.0)
        return cache[slot] / SLOT_MINUTES

    ahead = tuple(net(((minute_of_day + m) % (24 * 60)) // SLOT_MINUTES) for m in range(horizon_minutes))
    recent = [
        _slot_value(days, "arrivals", ((minute_of_day - m) % (24 * 60)) // SLOT_MINUTES, 1.0) / SLOT_MINUTES for m in range(1, 6)
    ]
    return Forecast(ahead, observed_rate=observed_rate, expected_rate=sum(recent) / len(recent), incoming=incoming)


def expected_concurrent(history: ArrivalHistory, local: datetime, holidays: Iterable[date] = ()) -> int:
    """Sessions a pool usually holds at `local` on a day like this (logons minus departures so far, mean over the
    comparable days, rounded up): what to seat when the pool itself cannot be read."""
    days = history.comparable(local.date(), holidays)
    if not days:
        return 0
    slot = (local.hour * 60 + local.minute) // SLOT_MINUTES
    held = [max(0, sum(d.arrivals[: slot + 1]) - sum(d.departures[: slot + 1])) for d in days]
    return math.ceil(sum(held) / len(held))


def to_entity(day: DayCounts) -> dict[str, str]:
    """Table columns for one day (compact: comma-separated counts)."""
    return {"arrivals": ",".join(map(str, day.arrivals)), "departures": ",".join(map(str, day.departures))}


def from_entity(entity: dict[str, object]) -> DayCounts:
    """The inverse of to_entity; a malformed row reads as an empty day."""
    try:
        arrivals = [int(x) for x in str(entity["arrivals"]).split(",")]
        departures = [int(x) for x in str(entity["departures"]).split(",")]
    except (KeyError, ValueError):
        return DayCounts()
    if len(arrivals) != SLOTS or len(departures) != SLOTS:
        return DayCounts()
    return DayCounts(arrivals, departures)
