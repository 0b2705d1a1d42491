"""The failover benchmark's references: the manual runbook really performs the documented procedure against the twins
(and so can be compared with Tandem), and every twin request costs its caller the virtual time the benchmark sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bench.failover_rto import CALL_COST_S, _morning, _usable
from bench.runbook import CENTRAL, EAST, Runbook, _arm_environment
from local.demo.estate import Twins, twins
from local.runtime import VirtualClock

pytest.importorskip("qumulo.rest_client", reason="qumulo-api is a test-only dependency in requirements-dev.txt")

START = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


@pytest.fixture
def world() -> Iterator[tuple[Twins, VirtualClock]]:
    clock = VirtualClock(START)
    with twins(clock, call_cost_s=CALL_COST_S) as t, _arm_environment(t):
        yield t, clock


def _advance(t: Twins, clock: VirtualClock) -> Callable[[timedelta], None]:
    def advance(by: timedelta) -> None:
        clock.advance(by)
        t.settle()

    return advance


def test_the_planned_runbook_moves_everyone_with_nothing_lost_in_the_documented_order(world: tuple[Twins, VirtualClock]) -> None:
    t, clock = world
    _morning(t, _advance(t, clock), "planned")
    east, central = t.anq["east"].cluster, t.anq["central"].cluster
    with Runbook(t, clock, users=16, drain_wait=timedelta(minutes=10)) as book:
        book.planned(EAST, CENTRAL)
    assert _usable(t, CENTRAL) and not _usable(t, EAST)
    source, target = east.directory("/profiles/fslogix").profiles, central.directory("/profiles-dr/fslogix").profiles
    assert {u: p.version for u, p in target.items()} == {u: p.version for u, p in source.items()}
    assert len(east.detach_writes) == 16 and not east.lost_writes  # every container closed before the fence
    names = [s["step"] for s in book.steps]
    assert names == [
        "drain source hosts",
        "message users",
        "drain wait",
        "log off users",
        "profiles closed",
        "source read-only",
        "replicate",
        "replication caught up",
        "make writable",
        "target writable",
        "start target hosts",
        "target hosts available",
        "move assignments",
    ]
    ends = [s["end_s"] for s in book.steps]
    assert ends == sorted(ends) and book.steps[2]["end_s"] - book.steps[2]["start_s"] >= 600  # one after another
    fenced = next(r for r in t.anq["east"].server.log() if r.method == "PATCH")
    assert "/v2/replication/source-relationships/" in fenced.path  # through Qumulo's own SDK, as documented


def test_the_unplanned_runbook_never_asks_the_lost_region(world: tuple[Twins, VirtualClock]) -> None:
    t, clock = world
    _morning(t, _advance(t, clock), "unplanned")
    asked = len(t.anq["east"].server.log())
    with Runbook(t, clock, users=16, drain_wait=timedelta(minutes=10)) as book:
        book.unplanned(EAST, CENTRAL)
    assert _usable(t, CENTRAL)
    assert len(t.anq["east"].server.log()) == asked


def test_each_request_costs_its_caller_the_set_virtual_time(world: tuple[Twins, VirtualClock]) -> None:
    t, clock = world
    with Runbook(t, clock, users=16, drain_wait=timedelta(minutes=10)) as book:
        before, calls = clock.now(), len(t.arm.server.log())
        book.hosts_ready(CENTRAL)  # a few ARM reads, one after another
        made = len(t.arm.server.log()) - calls
    assert made >= 2
    assert clock.now() - before == timedelta(seconds=CALL_COST_S["arm"] * made)
