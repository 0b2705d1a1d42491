"""Region holds: while a failover or failback runs, its regions are held, and autoscale obeys the hold.

One row per region in `<hub>regionholds`, owned by the failover instance that placed it:

- `source`: the region users are leaving. Autoscale starts nothing and undrains nothing there (no action at all).
- `target`: the region users are moving to. Autoscale runs, but never below the seats the incoming users need
  (`seats`), for every policy (native, legacy, tandem), until the hold ends.
- `fenced`: a region an unplanned failover left behind. Autoscale keeps its hosts drained and starts none,
  until a failback takes the hold over.

An unreadable hold table is never "no hold": `read()` raises DependencyError and autoscale then takes no
scale action anywhere it could not read. The hold ends with the instance, whatever its outcome.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.errors import DependencyError

HoldKind = Literal["source", "target", "fenced"]
KINDS: tuple[HoldKind, ...] = ("source", "target", "fenced")
TABLE = "regionholds"
PARTITION = "hold"


@dataclass(frozen=True)
class Hold:
    """One region's hold."""

    region: str
    instance: str
    kind: HoldKind
    seats: int = 0
    since: str = ""
    reason: str = ""
    pool_seats: dict[str, int] = field(default_factory=dict)  # `seats` split over the region's pools (by pool key)

    @property
    def allows_scaling(self) -> bool:
        """May autoscale plan for this region at all (start, undrain, scale in above the reserve)?"""
        return self.kind == "target"

    def to_entity(self) -> dict[str, Any]:
        """Table columns."""
        return {
            "PartitionKey": PARTITION,
            "RowKey": self.region,
            "instance": self.instance,
            "kind": self.kind,
            "seats": int(self.seats),
            "since": self.since,
            "reason": self.reason[:500],
            "pool_seats": json.dumps(self.pool_seats),
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Hold:
        """The inverse of to_entity; an unknown kind reads as `source` (the most restrictive that still serves)."""
        kind = str(entity.get("kind", "source"))
        try:
            split = {str(k): int(v) for k, v in json.loads(str(entity.get("pool_seats") or "{}")).items()}
        except (ValueError, AttributeError, TypeError):
            split = {}
        return cls(
            str(entity["RowKey"]),
            str(entity.get("instance", "")),
            kind if kind in KINDS else "source",
            int(entity.get("seats") or 0),
            str(entity.get("since", "")),
            str(entity.get("reason", "")),
            split,
        )


def _table() -> Any:
    from shared.state.tables import table

    return table(TABLE)


def read() -> dict[str, Hold]:
    """Every region's hold by region name; DependencyError when the table cannot be read."""
    try:
        rows = list(_table().query_entities(f"PartitionKey eq '{PARTITION}'"))
    except Exception as exc:  # storage down, throttled, misconfigured: the caller must not act as if unheld
        raise DependencyError(f"region holds unreadable: {type(exc).__name__}") from exc
    return {str(r["RowKey"]): Hold.from_entity(r) for r in rows}


def place(hold: Hold) -> Hold:
    """Place (or re-place, on a retried step) a hold; it replaces whatever hold the region had."""
    _table().upsert_entity(hold.to_entity())
    return hold


def release(region: str, instance: str) -> bool:
    """End the hold on `region` if `instance` owns it; True when one was removed. Another owner's hold stays."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    table = _table()
    try:
        entity = table.get_entity(PARTITION, region)
    except ResourceNotFoundError:
        return False
    if str(entity.get("instance", "")) != instance:
        return False
    try:
        table.delete_entity(entity, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified)
    except ResourceNotFoundError:
        return False
    except ResourceModifiedError:  # re-placed meanwhile (by its owner's next step): leave it
        return False
    return True
