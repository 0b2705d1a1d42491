"""Snapshot slots, tiers and names. Pure: the time is a parameter.

A slot is an hour (in the policy's time zone). Each tier says which slots are its own: hourly every hour,
daily at `daily_at`'s hour, weekly on `weekly_on` at that hour, monthly on the 1st at that hour. A slot that
belongs to several tiers produces one snapshot, kept as long as the longest of them; Qumulo expires it even
if Tandem is down. A tier whose last due slot was missed (the timer did not run, the cluster was down) is
caught up once, by the next snapshot Tandem takes.

Tandem's snapshots are named `{id}_{prefix}-{YYYYMMDDTHHMMZ}-{tier}` (the slot in UTC, the longest tier it
serves); Tandem only ever touches snapshots whose suffix matches that pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.config.model import SnapshotPolicy, SnapshotTier

RANK = {"hourly": 0, "daily": 1, "weekly": 2, "monthly": 3, "ondemand": -1}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Ours:
    """A snapshot Tandem made, as read back from its name."""

    id: int
    slot: datetime
    tier: str
    label: str = ""


@dataclass(frozen=True)
class Due:
    """What the current slot asks for one directory."""

    slot: datetime
    tiers: tuple[str, ...]
    expiration: datetime
    suffix: str


def slot_of(now: datetime) -> datetime:
    """The start of the hour `now` falls in (UTC)."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _local(policy: SnapshotPolicy, slot: datetime) -> datetime:
    return slot.astimezone(ZoneInfo(policy.time_zone))


def tier_due(policy: SnapshotPolicy, tier: SnapshotTier, slot: datetime) -> bool:
    """Is `slot` one of this tier's slots?"""
    local = _local(policy, slot)
    if tier.name == "hourly":
        return True
    daily = local.hour == policy.daily_at.hour
    if tier.name == "daily":
        return daily
    if tier.name == "weekly":
        return daily and WEEKDAYS[local.weekday()] == policy.weekly_on
    return daily and local.day == 1


def last_due(policy: SnapshotPolicy, tier: SnapshotTier, slot: datetime) -> datetime:
    """The most recent slot at or before `slot` that belongs to `tier` (looks back up to 32 days)."""
    candidate = slot
    for _ in range(32 * 24):
        if tier_due(policy, tier, candidate):
            return candidate
        candidate -= timedelta(hours=1)
    return candidate


def stamp(slot: datetime) -> str:
    """The slot as it appears in names: 20261130T0800Z."""
    return slot.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def suffix_for(policy: SnapshotPolicy, slot: datetime, tier: str, label: str = "") -> str:
    """The deterministic name suffix of (directory, slot); `label` for on-demand snapshots."""
    return f"{policy.name_prefix}-{stamp(slot)}-{tier}" + (f"-{label}" if label else "")


def parse_ours(policy: SnapshotPolicy, snapshot_id: int, suffix: str) -> Ours | None:
    """Tandem's reading of a snapshot suffix; None for anyone else's snapshot."""
    match = re.fullmatch(
        rf"{re.escape(policy.name_prefix)}-(\d{{8}}T\d{{4}}Z)-(hourly|daily|weekly|monthly|ondemand)"
        r"(?:-([a-z0-9-]{1,40}))?",
        suffix,
    )
    if match is None:
        return None
    slot = datetime.strptime(match.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    return Ours(snapshot_id, slot, match.group(2), match.group(3) or "")


def due(policy: SnapshotPolicy, now: datetime, existing: Iterable[Ours]) -> Due | None:
    """The snapshot this directory needs now, or None when the slot is done (or belongs to no tier).

    `existing` are Tandem's scheduled snapshots of the directory. The current slot is done when one exists
    for it. Otherwise it takes the tiers due now plus every tier whose last due slot has no snapshot of that
    tier (or a longer one) since: a missed daily is caught up once, by this snapshot.
    """
    slot = slot_of(now)
    scheduled = [o for o in existing if o.tier != "ondemand"]
    if any(o.slot == slot for o in scheduled):
        return None
    wanted = []
    for tier in policy.tiers:
        if tier_due(policy, tier, slot):
            wanted.append(tier)
            continue
        since = last_due(policy, tier, slot)
        if not any(o.slot >= since and RANK[o.tier] >= RANK[tier.name] for o in scheduled):
            wanted.append(tier)
    if not wanted:
        return None
    longest = max(wanted, key=lambda t: t.keep)
    return Due(slot, tuple(t.name for t in wanted), slot + longest.keep, suffix_for(policy, slot, longest.name))
