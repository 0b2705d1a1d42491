"""Autoscale's state per pool in Table storage, and its serialisation:

- `autoscalestate`:  last evaluation, last session count, last scale-out, hosts started / warned, announced arrivals;
- `logonhistory`:    one row per pool and local day with logons and departures per 5-minute slot (the forecast);
- `autoscaleledger`: every action with its reason and result (and every dry-run decision).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.autoscale.executor import Applied
from shared.autoscale.forecast import ArrivalHistory, DayCounts, from_entity, to_entity
from shared.autoscale.planner import Decision
from shared.clock import iso
from shared.telemetry import get_logger, log_event

log = get_logger("autoscale")


@dataclass
class PoolMemory:
    """What one evaluation leaves for the next."""

    last_eval: datetime | None = None
    last_sessions: int | None = None
    last_scale_out: datetime | None = None
    started: dict[str, datetime] = field(default_factory=dict)
    notified: dict[str, datetime] = field(default_factory=dict)
    incoming: int = 0
    incoming_base: int = 0
    incoming_until: datetime | None = None
    alert_rate: float = 0.0
    alert_until: datetime | None = None
    left: str = ""  # why the last evaluation left the pool alone ('' when Tandem scaled it)

    def to_entity(self) -> dict[str, Any]:
        """Table columns."""
        started = {k: v.isoformat() for k, v in self.started.items()}
        warned = {k: v.isoformat() for k, v in self.notified.items()}
        return {
            "state": json.dumps(
                {
                    "last_eval": iso(self.last_eval),
                    "last_sessions": self.last_sessions,
                    "last_scale_out": iso(self.last_scale_out),
                    "started": started,
                    "notified": warned,
                    "incoming": self.incoming,
                    "incoming_base": self.incoming_base,
                    "incoming_until": iso(self.incoming_until),
                    "alert_rate": self.alert_rate,
                    "alert_until": iso(self.alert_until),
                    "left": self.left,
                }
            ),
            "left": self.left,
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any] | None) -> PoolMemory:
        """The inverse of to_entity (an unreadable row starts afresh)."""
        try:
            d = json.loads(str((entity or {})["state"]))
        except (KeyError, ValueError):
            return cls()
        return cls(
            last_eval=_dt(d.get("last_eval")),
            last_sessions=d.get("last_sessions"),
            last_scale_out=_dt(d.get("last_scale_out")),
            started={k: v for k, v in ((k, _dt(v)) for k, v in d.get("started", {}).items()) if v},
            notified={k: v for k, v in ((k, _dt(v)) for k, v in d.get("notified", {}).items()) if v},
            incoming=int(d.get("incoming") or 0),
            incoming_base=int(d.get("incoming_base") or 0),
            incoming_until=_dt(d.get("incoming_until")),
            alert_rate=float(d.get("alert_rate") or 0.0),
            alert_until=_dt(d.get("alert_until")),
            left=str(d.get("left") or ""),
        )


def _merged(newer: list[int], mine: list[int], base: list[int]) -> list[int]:
    """The newer row plus what this evaluation added over the row it had read."""
    return [n + max(0, m - b) for n, m, b in zip(newer, mine, base, strict=True)]


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class AutoscaleStore:
    """Table-backed state, history and ledger; history is cached per process (only today's row changes)."""

    def __init__(self) -> None:
        self._history: dict[str, ArrivalHistory] = {}
        self._etags: dict[tuple[str, date], str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _table(name: str) -> Any:
        from shared.state.tables import table

        return table(name)

    def load(self, key: str) -> PoolMemory:
        """A pool's memory (empty for a new pool)."""
        from azure.core.exceptions import ResourceNotFoundError

        from shared.state.tables import safe_key

        try:
            return PoolMemory.from_entity(self._table("autoscalestate").get_entity("pool", safe_key(key)))
        except ResourceNotFoundError:
            return PoolMemory()

    def save(self, key: str, memory: PoolMemory) -> None:
        """Write a pool's memory."""
        from shared.state.tables import safe_key

        self._table("autoscalestate").upsert_entity(
            {"PartitionKey": "pool", "RowKey": safe_key(key), "pool": key, **memory.to_entity()}
        )

    def history(self, key: str, today: date) -> ArrivalHistory:
        """A pool's recorded days: past days read once per process, today's row read fresh (other instances write
        it), with its ETag kept for `save_day`."""
        from azure.core.exceptions import ResourceNotFoundError

        from shared.state.tables import safe_key

        with self._lock:
            past = self._history.get(key)
        if past is None:
            since = (today - timedelta(days=35)).isoformat()
            rows = self._table("logonhistory").query_entities(
                "PartitionKey eq @p and RowKey ge @d", parameters={"p": safe_key(key), "d": since}
            )
            past = ArrivalHistory({date.fromisoformat(r["RowKey"]): from_entity(r) for r in rows if r["RowKey"] < today.isoformat()})
            with self._lock:
                past = self._history.setdefault(key, past)
        days = dict(past.days)
        try:
            row = self._table("logonhistory").get_entity(safe_key(key), today.isoformat())
            days[today] = from_entity(row)
            self._etags[(key, today)] = row.metadata["etag"]
        except ResourceNotFoundError:
            self._etags.pop((key, today), None)
        return ArrivalHistory(days)

    def save_day(self, key: str, day: date, history: ArrivalHistory, base: DayCounts | None = None) -> None:
        """Write one day of a pool's history. The write is conditional on the row read by `history()`; when another
        writer changed it meanwhile, this evaluation's additions (over `base`) are merged into the newer row."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        from shared.state.tables import safe_key

        counts = history.days.get(day)
        if counts is None:
            return
        table = self._table("logonhistory")
        pk, rk = safe_key(key), day.isoformat()
        for _ in range(3):
            etag = self._etags.get((key, day))
            entity = {"PartitionKey": pk, "RowKey": rk, **to_entity(counts)}
            try:
                if etag is None:
                    table.create_entity(entity)
                else:
                    table.update_entity(entity, etag=etag, match_condition=MatchConditions.IfNotModified)
                self._etags.pop((key, day), None)
                return
            except (ResourceModifiedError, ResourceExistsError, ResourceNotFoundError):
                try:
                    row = table.get_entity(pk, rk)
                except ResourceNotFoundError:  # deleted meanwhile: create it afresh with what we have
                    self._etags.pop((key, day), None)
                    continue
                newer = from_entity(row)
                mine = base or DayCounts()
                counts = DayCounts(
                    _merged(newer.arrivals, counts.arrivals, mine.arrivals),
                    _merged(newer.departures, counts.departures, mine.departures),
                )
                base = newer
                self._etags[(key, day)] = row.metadata["etag"]
        log_event(log, "autoscale.history_conflict", level=30, pool=key, day=day.isoformat())  # left as the others wrote it

    def ledger(self, key: str, when: datetime, policy: str, decision: Decision, applied: list[Applied]) -> None:
        """Record every action and its reason (one transaction per evaluation)."""
        from shared.state.tables import safe_key

        stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        rows = [
            {
                "PartitionKey": safe_key(key),
                "RowKey": f"{stamp}-{i:03d}",
                "time": when.isoformat(),
                "policy": policy,
                "action": a.step.action,
                "host": a.step.host,
                "reason": a.step.reason,
                "result": a.result,
                "detail": a.detail[:1000],
                "target_hosts": decision.target_hosts,
            }
            for i, a in enumerate(applied)
        ]
        table = self._table("autoscaleledger")
        for chunk in range(0, len(rows), 100):
            table.submit_transaction([("upsert", row) for row in rows[chunk : chunk + 100]])

    def ledger_rows(self, key: str) -> list[dict[str, Any]]:
        """A pool's ledger, oldest first."""
        from shared.state.tables import safe_key

        return list(self._table("autoscaleledger").query_entities("PartitionKey eq @p", parameters={"p": safe_key(key)}))
