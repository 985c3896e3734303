"""Sampling, Kubernetes' failure message, rotation, tie-breaking, and cost per pod."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from nodeos.scheduler.algorithm import Algorithm, FitError, nodes_to_find
from nodeos.scheduler.cache import SchedulerCache
from nodeos.scheduler.predicates import failures, filters_for
from tests.unit.test_scheduler_objects import node, pod_info


def cache_of(count: int, **kwargs) -> SchedulerCache:
    cache = SchedulerCache()
    for i in range(count):
        cache.set_node(node(f"n{i:05}", **kwargs))
    return cache


@pytest.mark.parametrize(("nodes", "percentage", "expected"), [
    (0, None, 0), (50, None, 50), (99, None, 99),
    (100, None, 100),  # 49% of 100 is below the floor of 100
    (1000, None, 420),  # 50 - 1000/125 = 42%
    (5000, None, 500),  # 10%
    (20000, None, 1000),  # never below 5%
    (1000, 10, 100), (1000, 50, 500), (1000, 100, 1000), (50, 10, 50),
])
def test_how_many_feasible_nodes_to_find(nodes, percentage, expected) -> None:
    assert nodes_to_find(nodes, percentage) == expected


def test_fit_error_message_is_kubernetes_own() -> None:
    error = FitError(3, Counter({"Insufficient cpu": 2,
                                 "node(s) had untolerated taint {node.kubernetes.io/unreachable: }": 1}))
    # sorted as strings, as Kubernetes' sortReasonsHistogram does
    assert error.message() == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                               "{node.kubernetes.io/unreachable: }, 2 Insufficient cpu.")
    assert FitError(0, Counter()).message() == "no nodes available to schedule pods"


def test_every_examined_node_contributes_its_reasons() -> None:
    cache = cache_of(3, cpu="1", memory="1Gi")
    cache.set_node(node("n00000", cpu="1", memory="1Gi", unschedulable=True))
    result = Algorithm(cache).schedule(pod_info("p", "2", "2Gi"))
    assert isinstance(result, FitError)
    assert result.message() == ("0/3 nodes are available: 1 node(s) were unschedulable, "
                                "2 Insufficient cpu, 2 Insufficient memory.")


def test_sampling_stops_early_and_rotates_the_start() -> None:
    cache = cache_of(1000)
    algorithm = Algorithm(cache)
    feasible, _ = algorithm.find_feasible(pod_info(), cache.nodes())
    assert len(feasible) == 420 and feasible[0].name == "n00000"
    assert algorithm.next_start == 420
    feasible, _ = algorithm.find_feasible(pod_info(), cache.nodes())
    assert feasible[0].name == "n00420"
    feasible, _ = algorithm.find_feasible(pod_info(), cache.nodes())
    assert feasible[0].name == "n00840" and feasible[-1].name == "n00259"  # wrapped around


def test_infeasible_nodes_do_not_count_towards_the_sample() -> None:
    cache = cache_of(200)
    for i in range(0, 200, 2):
        cache.set_node(node(f"n{i:05}", ready="False"))
    feasible, reasons = Algorithm(cache).find_feasible(pod_info(), cache.nodes())
    assert len(feasible) == 100 and reasons == Counter({"node(s) were not ready": 100})


def test_ties_are_broken_at_random() -> None:
    cache = cache_of(4)
    algorithm = Algorithm(cache, rng=random.Random(7))
    chosen = Counter(algorithm.schedule(pod_info()).name for _ in range(400))
    assert set(chosen) == {f"n{i:05}" for i in range(4)}
    assert min(chosen.values()) > 50


def test_the_best_score_wins() -> None:
    cache = cache_of(3)
    cache.assume(pod_info("busy1", "2", "4Gi"), "n00000")
    cache.assume(pod_info("busy2", "1", "2Gi"), "n00001")
    assert Algorithm(cache).schedule(pod_info("p", "1", "1Gi")).name == "n00002"


def time_per_pod(nodes: int, pods: int = 60) -> float:
    cache = cache_of(nodes)
    algorithm = Algorithm(cache)
    infos = [pod_info(f"p{i}", "100m", "128Mi", owner=f"rs{i % 10}") for i in range(pods)]
    started = time.perf_counter()
    for info in infos:
        cache.assume(info, algorithm.schedule(info).name)
    return (time.perf_counter() - started) / pods


def test_cost_per_pod_grows_less_than_linearly_with_nodes() -> None:
    small = min(time_per_pod(1000) for _ in range(2))
    large = min(time_per_pod(5000) for _ in range(2))
    # Sampling examines 420 of 1,000 nodes but only 500 of 5,000: expect ~1.2x, allow noise.
    assert large / small < 10, (small, large)
    assert small < 0.05, f"{small * 1000:.1f} ms per pod at 1,000 nodes"


def test_the_fast_path_for_clean_nodes_agrees_with_every_predicate() -> None:
    cache = SchedulerCache()
    variants = [{}, {"unschedulable": True}, {"ready": "False"}, {"labels": {"disk": "ssd"}},
                {"taints": [{"key": "k", "effect": "NoSchedule"}]}, {"cpu": "1"}, {"pods": 1}]
    for i, kwargs in enumerate(variants):
        cache.set_node(node(f"n{i}", **kwargs))
    cache.assume(pod_info("full", host_port=80), "n6")
    pods = [pod_info("plain"), pod_info("big", "2"), pod_info("mem", None, "9Gi"), pod_info("port", host_port=80),
            pod_info("ssd", node_selector={"disk": "ssd"}),
            pod_info("tolerant", "2", tolerations=[{"operator": "Exists"}])]
    for pod in pods:
        feasible, _ = Algorithm(cache).find_feasible(pod, cache.nodes())
        expected = [n for n in cache.nodes() if not failures(filters_for(pod), pod, n)]
        assert feasible == expected, pod.name
