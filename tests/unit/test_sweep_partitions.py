"""The sweep's partitions: every pool exactly once, pools sharing a VM resource group never split, about `size`
pools each, the same answer every time."""

from __future__ import annotations

from shared.autoscale.sweep import partitions


def _estate() -> list[tuple[str, str, list[str]]]:
    pools = [(f"a/rg/hp{p}", "A", [f"rg-hosts-{p % 4}"]) for p in range(12)]  # 4 groups of 3 pools
    pools += [(f"b/rg/hp{p}", "B", [f"rg-hosts-{p % 4}"]) for p in range(3)]  # same names, another subscription
    pools.append(("a/rg/bridge", "A", ["rg-hosts-0", "rg-hosts-1"]))  # joins two groups into one of 7
    return pools


def test_every_pool_once_and_shared_groups_together() -> None:
    pools = _estate()
    parts = partitions(pools, 4)
    keys = [k for part in parts for k in part]
    assert sorted(keys) == sorted(k for k, _, _ in pools)
    where = {k: i for i, part in enumerate(parts) for k in part}
    for sub, group in {(s, g) for _, s, groups in pools for g in groups}:
        sharing = {where[k] for k, s, groups in pools if s == sub and group in groups}
        assert len(sharing) == 1, (sub, group)
    assert sorted(map(len, parts)) == [1, 4, 4, 7]  # the bridged group of 7 stays whole; the rest packed to 4
    assert partitions(list(reversed(pools)), 4) == parts


def test_one_partition_when_the_size_holds_the_estate() -> None:
    assert len(partitions(_estate(), 25)) == 1
    assert partitions([], 25) == []
