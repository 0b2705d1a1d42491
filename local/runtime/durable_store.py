"""Orchestration history in Azure Table storage (Azurite locally), so in-flight work survives a restart.

One table per task hub; one partition per instance holding a `meta` row, the committed history rows
(`h-00000001`...) and the inbox of events not yet played (`i-00000001`...). An episode commits its new
history, its consumed inbox rows and the new meta row in one partition transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

_CHUNK = 30_000  # characters per string property (the service allows 32K UTF-16 units)
_INVALID_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def open_table(connection_string: str, hub: str, suffix: str) -> TableClient:
    """The task hub's table `<hub><suffix>` (letters and digits only), created if missing."""
    name = f"{re.sub(r'[^A-Za-z0-9]', '', hub) or 'tandem'}{suffix}"[:63]
    service = TableServiceClient.from_connection_string(connection_string)
    try:
        service.create_table(name)
    except ResourceExistsError:
        pass
    return service.get_table_client(name)


def valid_instance_id(instance_id: str) -> bool:
    """Whether an id can be a partition key (the real task hub has the same restriction)."""
    return 0 < len(instance_id) <= 256 and not _INVALID_KEY.search(instance_id)


def _pack(name: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    parts = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    packed: dict[str, Any] = {f"{name}{i}": part for i, part in enumerate(parts)}
    packed[f"{name}Parts"] = len(parts)
    return packed


def _unpack(name: str, entity: dict[str, Any]) -> str | None:
    count = entity.get(f"{name}Parts")
    if count is None:
        return None
    return "".join(entity[f"{name}{i}"] for i in range(int(count)))


@dataclass
class Instance:
    """Everything the engine knows about one orchestration instance."""

    instance_id: str
    name: str
    input: str | None
    created: datetime
    status: str = "Pending"
    updated: datetime | None = None
    output: str | None = None
    custom_status: str | None = None
    error: str | None = None
    parent_id: str | None = None
    parent_task_id: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    action_ids: list[int] = field(default_factory=list)
    retries: dict[str, dict[str, Any]] = field(default_factory=dict)
    canceled: set[int] = field(default_factory=set)
    inbox_seq: int = 0

    def meta_fields(self) -> dict[str, Any]:
        """The meta row's columns (without keys)."""
        row: dict[str, Any] = {
            "Name": self.name,
            "Status": self.status,
            "Created": self.created.isoformat(),
            "Updated": (self.updated or self.created).isoformat(),
            "Error": self.error or "",
            "ParentId": self.parent_id or "",
            "ParentTaskId": -1 if self.parent_task_id is None else self.parent_task_id,
            "HistoryLength": len(self.history),
            "State": json.dumps({"action_ids": self.action_ids, "retries": self.retries, "canceled": sorted(self.canceled)}),
        }
        row.update(_pack("Input", self.input))
        row.update(_pack("Output", self.output))
        row.update(_pack("CustomStatus", self.custom_status))
        return row


class TableHistoryStore:
    """Task-hub persistence on Azure Table storage."""

    def __init__(self, connection_string: str, hub: str) -> None:
        self._table = open_table(connection_string, hub, "History")

    def commit(self, inst: Instance, new_history: list[dict[str, Any]], consumed: list[str]) -> None:
        """Append `new_history`, drop the consumed inbox rows and write the meta row."""
        start = len(inst.history) - len(new_history)
        ops: list[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]] = []
        for offset, event in enumerate(new_history):
            row = {"PartitionKey": inst.instance_id, "RowKey": f"h-{start + offset:08d}"}
            row.update(_pack("Event", json.dumps(event)))
            ops.append(("upsert", row, {"mode": UpdateMode.REPLACE}))
        ops.extend(("delete", {"PartitionKey": inst.instance_id, "RowKey": key}) for key in consumed)
        meta = {"PartitionKey": inst.instance_id, "RowKey": "meta", **inst.meta_fields()}
        # History rows first, meta last: a crash in between leaves rows beyond HistoryLength, which load ignores.
        while len(ops) > 99:
            self._table.submit_transaction(ops[:99])  # type: ignore[arg-type]
            ops = ops[99:]
        ops.append(("upsert", meta, {"mode": UpdateMode.REPLACE}))
        self._table.submit_transaction(ops)  # type: ignore[arg-type]

    def add_inbox(self, instance_id: str, key: str, event: dict[str, Any]) -> None:
        """Persist one event that the instance has not played yet."""
        row = {"PartitionKey": instance_id, "RowKey": key}
        row.update(_pack("Event", json.dumps(event)))
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def load(self, instance_id: str) -> Instance | None:
        """Rebuild one instance from its partition."""
        rows = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id}))
        meta = next((r for r in rows if r["RowKey"] == "meta"), None)
        if meta is None:
            return None
        state = json.loads(meta["State"])
        inst = Instance(
            instance_id=instance_id,
            name=meta["Name"],
            input=_unpack("Input", meta),
            created=datetime.fromisoformat(meta["Created"]),
            status=meta["Status"],
            updated=datetime.fromisoformat(meta["Updated"]),
            output=_unpack("Output", meta),
            custom_status=_unpack("CustomStatus", meta),
            error=meta["Error"] or None,
            parent_id=meta["ParentId"] or None,
            parent_task_id=None if meta["ParentTaskId"] < 0 else int(meta["ParentTaskId"]),
            action_ids=state["action_ids"],
            retries=state["retries"],
            canceled=set(state["canceled"]),
        )
        length = int(meta["HistoryLength"])
        history = sorted((r for r in rows if r["RowKey"].startswith("h-")), key=lambda r: r["RowKey"])
        inst.history = [json.loads(_unpack("Event", r) or "{}") for r in history[:length]]
        inbox = sorted((r for r in rows if r["RowKey"].startswith("i-")), key=lambda r: r["RowKey"])
        inst.inbox = [(r["RowKey"], json.loads(_unpack("Event", r) or "{}")) for r in inbox]
        inst.inbox_seq = max((int(k[2:]) for k, _ in inst.inbox), default=0)
        return inst

    def instance_ids(self, statuses: set[str] | None = None) -> list[str]:
        """Ids of all instances, or of those in `statuses`."""
        rows = self._table.query_entities("RowKey eq 'meta'", select=["PartitionKey", "Status"])
        return [r["PartitionKey"] for r in rows if statuses is None or r["Status"] in statuses]

    def purge(self, instance_id: str) -> bool:
        """Delete an instance's whole partition; False if it did not exist."""
        rows = list(
            self._table.query_entities("PartitionKey eq @pk", parameters={"pk": instance_id}, select=["PartitionKey", "RowKey"])
        )
        if not rows:
            return False
        for start in range(0, len(rows), 100):
            ops = [("delete", {"PartitionKey": instance_id, "RowKey": r["RowKey"]}) for r in rows[start : start + 100]]
            try:
                self._table.submit_transaction(ops)  # type: ignore[arg-type]
            except ResourceNotFoundError:
                pass
        return True
