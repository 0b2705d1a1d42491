"""The failover's steps as idempotent operations on ARM and Qumulo; each is one Durable activity.

Every step takes a plain-JSON request and returns a plain-JSON result, so the orchestration can replay it,
and can run again without changing anything twice (drain, fence, make-writable and assignment moves all
read the current state first; repeating them is a no-op). The steps come in families, one module each:
checks.py (read-only gates), avd.py (ARM), storage.py (Qumulo), records.py (holds and audit).
"""

from __future__ import annotations

from typing import Any

from shared.failover.avd import AvdSteps
from shared.failover.checks import Checks
from shared.failover.records import RecordSteps
from shared.failover.storage import StorageSteps


class Steps(Checks, AvdSteps, StorageSteps, RecordSteps):
    """Every step, given the app's long-lived clients; composite steps that span families live here."""

    def try_fence(self, req: dict[str, Any]) -> dict[str, Any]:
        """Fence a region that may still be down: drain its hosts and make its directories read-only."""
        try:
            self.drain({"region": req["source"]})
            self.fence({"source": req["source"], "target": req["target"], "read_only": True})
        except Exception as exc:  # still unreachable: try again later
            return {"done": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
        return {"done": True}
