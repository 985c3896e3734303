"""Priorities: among the nodes a pod fits on, which is best?

Each priority scores a node from 0 to 100. Two kinds, as in Kubernetes:

- *absolute* ones score a node on its own (least requested, balanced
  allocation);
- *relative* ones give a raw count (pods of the same owner already there,
  matching preferred-affinity weight, intolerable PreferNoSchedule taints)
  that only means something next to the other candidates, so the counts are
  normalized over the feasible nodes: ``100 * raw / max`` or its reverse.

The total is the weighted sum, with Kubernetes' default weights (fit 1,
balanced 1, spreading 2, node affinity 2, taints 3). A relative priority that
is the same for every node (a pod without an owner, without preferences) is
skipped entirely: it cannot change the winner, and skipping it is most of
the speed of a scheduling cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from nodeos.scheduler.cache import SchedulerCache
from nodeos.scheduler.info import NodeInfo, PodInfo
from nodeos.scheduler.predicates import matches_term, tolerated

MAX_SCORE = 100.0
LEAST_REQUESTED_WEIGHT = 1
BALANCED_ALLOCATION_WEIGHT = 1
SPREAD_WEIGHT = 2
NODE_AFFINITY_WEIGHT = 2
TAINT_WEIGHT = 3


# -- absolute priorities ---------------------------------------------------------------

def least_requested(pod: PodInfo, node: NodeInfo) -> float:
    """Favour nodes with the most cpu and memory left (non-zero requests, as Kubernetes):
    the mean of the free fractions, 0 for a resource the node lacks."""
    cpu_total, memory_total = node.allocatable_cpu, node.allocatable_memory
    cpu = node.nonzero_cpu + pod.nonzero_cpu
    memory = node.nonzero_memory + pod.nonzero_memory
    free_cpu = (cpu_total - cpu) / cpu_total if cpu_total > 0 and cpu <= cpu_total else 0.0
    free_memory = (memory_total - memory) / memory_total if memory_total > 0 and memory <= memory_total else 0.0
    return (free_cpu + free_memory) * (MAX_SCORE / 2)


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> float:
    """Favour nodes whose cpu and memory would be used in the same proportion, so
    neither runs out while the other idles: 100 * (1 - standard deviation), which
    for two fractions is half their difference."""
    cpu_total, memory_total = node.allocatable_cpu, node.allocatable_memory
    cpu = (node.requested_cpu + pod.cpu) / cpu_total if cpu_total > 0 else 1.0
    memory = (node.requested_memory + pod.memory) / memory_total if memory_total > 0 else 1.0
    # fractions capped at 1 (conditionals, not min(): this runs for every candidate node)
    return (1.0 - abs((cpu if cpu < 1.0 else 1.0) - (memory if memory < 1.0 else 1.0)) / 2) * MAX_SCORE


# -- relative priorities (raw values, normalized over the candidates) -------------------

def owner_pods(pod: PodInfo, nodes: Sequence[NodeInfo], cache: SchedulerCache) -> list[float]:
    """How many pods of the pod's controller each node already runs (fewer is better)."""
    counts = cache.owner_counts(pod.owner_uid) if pod.owner_uid else {}
    return [counts.get(node.name, 0) for node in nodes]


def preferred_affinity(pod: PodInfo, node: NodeInfo) -> float:
    """The summed weights of the preferred node-affinity terms the node matches."""
    return sum(weight for weight, term in pod.preferred_terms if matches_term(term, node))


def intolerable_soft_taints(pod: PodInfo, node: NodeInfo) -> float:
    """PreferNoSchedule taints the pod does not tolerate (fewer is better)."""
    return sum(1 for taint in node.soft_taints if not tolerated(pod.tolerations, taint))


def normalize(raw: Sequence[float], *, reverse: bool) -> list[float]:
    """Kubernetes' DefaultNormalizeScore: scale to 0-100 by the maximum; ``reverse``
    makes the smallest raw value score highest."""
    top = max(raw, default=0)
    if top <= 0:
        return [MAX_SCORE if reverse else 0.0] * len(raw)
    if reverse:
        return [MAX_SCORE - MAX_SCORE * value / top for value in raw]
    return [MAX_SCORE * value / top for value in raw]


# -- the total ---------------------------------------------------------------------------

def scores(pod: PodInfo, nodes: Sequence[NodeInfo], cache: SchedulerCache) -> list[float]:
    """The weighted total of every priority, per node, in the order of ``nodes``."""
    totals = [LEAST_REQUESTED_WEIGHT * least_requested(pod, node)
              + BALANCED_ALLOCATION_WEIGHT * balanced_allocation(pod, node) for node in nodes]
    relative: list[tuple[list[float], int, bool]] = []
    if pod.owner_uid:
        relative.append((owner_pods(pod, nodes, cache), SPREAD_WEIGHT, True))
    if pod.preferred_terms:
        relative.append(([preferred_affinity(pod, node) for node in nodes], NODE_AFFINITY_WEIGHT, False))
    if any(node.soft_taints for node in nodes):
        relative.append(([intolerable_soft_taints(pod, node) for node in nodes], TAINT_WEIGHT, True))
    for raw, weight, reverse in relative:
        if min(raw) == max(raw):
            continue  # the same for every node: it cannot change the winner
        normalized = normalize(raw, reverse=reverse)
        totals = [total + weight * score for total, score in zip(totals, normalized, strict=True)]
    return totals
