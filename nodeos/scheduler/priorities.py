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

from collections.abc import Callable, Sequence

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
    """Favour nodes with the most cpu and memory left (non-zero requests, as Kubernetes)."""
    cpu = _free_fraction(node.nonzero_cpu + pod.nonzero_cpu, node.allocatable_cpu)
    memory = _free_fraction(node.nonzero_memory + pod.nonzero_memory, node.allocatable_memory)
    return (cpu + memory) * MAX_SCORE / 2


def _free_fraction(requested: int, allocatable: int) -> float:
    if allocatable <= 0 or requested > allocatable:
        return 0.0
    return (allocatable - requested) / allocatable


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> float:
    """Favour nodes whose cpu and memory would be used in the same proportion, so
    neither runs out while the other idles: 100 * (1 - standard deviation)."""
    cpu = _used_fraction(node.requested_cpu + pod.cpu, node.allocatable_cpu)
    memory = _used_fraction(node.requested_memory + pod.memory, node.allocatable_memory)
    return (1.0 - abs(cpu - memory) / 2) * MAX_SCORE


def _used_fraction(requested: int, allocatable: int) -> float:
    return 1.0 if allocatable <= 0 else min(requested / allocatable, 1.0)


# -- relative priorities (raw values, normalized over the candidates) -------------------

def owner_pods(cache: SchedulerCache) -> Callable[[PodInfo, NodeInfo], float]:
    """How many pods of the pod's controller are already on the node (fewer is better)."""
    def raw(pod: PodInfo, node: NodeInfo) -> float:
        return cache.owner_count(pod.owner_uid, node.name) if pod.owner_uid else 0
    return raw


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
    relative: list[tuple[Callable[[PodInfo, NodeInfo], float], int, bool]] = []
    if pod.owner_uid:
        relative.append((owner_pods(cache), SPREAD_WEIGHT, True))
    if pod.preferred_terms:
        relative.append((preferred_affinity, NODE_AFFINITY_WEIGHT, False))
    if any(node.soft_taints for node in nodes):
        relative.append((intolerable_soft_taints, TAINT_WEIGHT, True))
    for priority, weight, reverse in relative:
        normalized = normalize([priority(pod, node) for node in nodes], reverse=reverse)
        totals = [total + weight * score for total, score in zip(totals, normalized, strict=True)]
    return totals
