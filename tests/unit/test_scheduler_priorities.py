"""Each priority as a plain function (0-100), normalization, and the weighted total."""

from __future__ import annotations

import pytest

from nodeos.scheduler import priorities as s
from nodeos.scheduler.cache import SchedulerCache
from tests.unit.test_scheduler_objects import node, node_info, pod_info


def test_least_requested_prefers_emptier_nodes() -> None:
    empty, half = node_info(cpu="4", memory="8Gi"), node_info(cpu="4", memory="8Gi")
    half.add(pod_info("x", "2", "4Gi"))
    small = pod_info("p", "1", "2Gi")
    assert s.least_requested(small, empty) == pytest.approx(75.0)  # 3/4 of cpu and of memory left
    assert s.least_requested(small, half) == pytest.approx(25.0)
    # a pod without requests still counts as 100m / 200Mi here
    assert s.least_requested(pod_info("be"), empty) < 100.0


def test_balanced_allocation_prefers_even_use_of_cpu_and_memory() -> None:
    cpu_heavy = node_info(cpu="4", memory="8Gi")
    cpu_heavy.add(pod_info("x", "3", "1Gi"))
    even = node_info(cpu="4", memory="8Gi")
    p = pod_info("p", "1", "2Gi")
    assert s.balanced_allocation(p, even) == pytest.approx(100.0)
    assert s.balanced_allocation(p, cpu_heavy) == pytest.approx((1 - abs(1.0 - 3 / 8) / 2) * 100)


def test_normalize_scales_by_the_maximum() -> None:
    assert s.normalize([0, 1, 2], reverse=False) == [0, 50, 100]
    assert s.normalize([0, 1, 2], reverse=True) == [100, 50, 0]
    assert s.normalize([0, 0], reverse=True) == [100, 100]
    assert s.normalize([0, 0], reverse=False) == [0, 0]


def test_spreading_counts_pods_of_the_same_owner() -> None:
    cache = SchedulerCache()
    for name in ("n1", "n2", "n3"):
        cache.set_node(node(name))
    cache.assume(pod_info("a", owner="rs"), "n1")
    cache.assume(pod_info("b", owner="rs"), "n1")
    cache.assume(pod_info("c", owner="other"), "n2")
    new = pod_info("d", owner="rs")
    assert s.owner_pods(new, [cache.node(n) for n in ("n1", "n2", "n3")], cache) == [2, 0, 0]
    totals = s.scores(new, cache.nodes(), cache)
    assert min(totals[1], totals[2]) > totals[0]


def test_preferred_affinity_sums_the_weights_of_matching_terms() -> None:
    prefer = {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 3, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
    ]}
    p = pod_info(affinity=prefer)
    nodes = [node_info("x", labels={"zone": "a", "disk": "ssd"}), node_info("y", labels={"zone": "a"}),
             node_info("z", labels={"disk": "hdd"}), node_info("w")]
    assert [s.preferred_affinity(p, n) for n in nodes] == [13, 10, 3, 0]
    totals = s.scores(p, nodes, SchedulerCache())
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[1] > totals[2] > totals[3]


def test_prefer_no_schedule_taints_push_pods_elsewhere_unless_tolerated() -> None:
    soft = {"key": "spot", "value": "true", "effect": "PreferNoSchedule"}
    nodes = [node_info("tainted", taints=[soft]), node_info("clean")]
    assert [s.intolerable_soft_taints(pod_info(), n) for n in nodes] == [1, 0]
    plain = s.scores(pod_info(), nodes, SchedulerCache())
    assert plain[1] - plain[0] == pytest.approx(s.TAINT_WEIGHT * 100)
    tolerant = pod_info(tolerations=[{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert s.scores(tolerant, nodes, SchedulerCache())[0] == pytest.approx(s.scores(tolerant, nodes,
                                                                                    SchedulerCache())[1])
