"""One scheduling decision: filter nodes, score the feasible ones, pick the best.

Sampling (Kubernetes' percentageOfNodesToScore): in a large cluster, looking
at every node for every pod buys little, so filtering stops once enough
feasible nodes are found: all of them below 100 nodes, otherwise
``max(5, 50 - nodes/125)`` percent (or the configured percentage), but never
fewer than 100. Each search starts where the previous one stopped, so every
node gets its turn. Per-pod cost is therefore bounded by the nodes examined,
which grows far slower than the cluster (42% of 1,000 nodes, 10% of 5,000).

Ties are broken at random among the best, so equal nodes
share the load instead of the first one taking everything.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from nodeos.scheduler.cache import SchedulerCache
from nodeos.scheduler.info import NodeInfo, PodInfo
from nodeos.scheduler.predicates import (
    RESOURCES,
    Predicate,
    failures,
    filters_for,
    fits_resources,
    pod_filters_for,
)
from nodeos.scheduler.priorities import scores

MIN_FEASIBLE_NODES = 100
MIN_PERCENTAGE = 5
NO_NODES = "no nodes available to schedule pods"


def nodes_to_find(num_nodes: int, percentage: int | None = None) -> int:
    """How many feasible nodes to find before scoring (Kubernetes' numFeasibleNodesToFind)."""
    if num_nodes < MIN_FEASIBLE_NODES or (percentage is not None and percentage >= 100):
        return num_nodes
    if percentage is None or percentage <= 0:
        percentage = max(MIN_PERCENTAGE, 50 - num_nodes // 125)
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES)


@dataclass
class FitError:
    """No node fits: how many nodes there were and why each was rejected."""

    num_nodes: int
    reasons: Counter[str]

    def message(self) -> str:
        """Kubernetes' wording: counts per reason, sorted as strings, comma-joined."""
        if not self.num_nodes:
            return NO_NODES
        histogram = sorted(f"{count} {reason}" for reason, count in self.reasons.items())
        return f"0/{self.num_nodes} nodes are available: {', '.join(histogram)}."


class Algorithm:
    """Filters and scores over the cache's nodes, remembering where to start next."""

    def __init__(self, cache: SchedulerCache, *, percentage_of_nodes_to_score: int | None = None,
                 rng: random.Random | None = None) -> None:
        self.cache = cache
        self.percentage = percentage_of_nodes_to_score
        self.rng = rng or random.Random()
        self.next_start = 0

    def schedule(self, pod: PodInfo) -> NodeInfo | FitError:
        """The node ``pod`` should go to, or why there is none."""
        nodes = self.cache.nodes()
        feasible, reasons = self.find_feasible(pod, nodes)
        if not feasible:
            return FitError(len(nodes), reasons)
        if len(feasible) == 1:
            return feasible[0]
        return self.select(feasible, scores(pod, feasible, self.cache))

    def find_feasible(self, pod: PodInfo, nodes: Sequence[NodeInfo]) -> tuple[list[NodeInfo], Counter[str]]:
        """Up to ``nodes_to_find`` nodes ``pod`` fits on, from a rotating start, and the
        reasons the examined others were rejected."""
        total = len(nodes)
        if not total:
            return [], Counter()
        wanted = nodes_to_find(total, self.percentage)
        groups = filters_for(pod)
        # The common case, checked first: a clean node (see NodeInfo.clean) on which the
        # pod's resources fit and its selector/ports predicates, if any, pass.
        extra = tuple(p for group in pod_filters_for(pod) for p in group if p not in RESOURCES)
        feasible: list[NodeInfo] = []
        reasons: Counter[str] = Counter()
        start = self.next_start % total
        examined = 0
        for node in [*nodes[start:], *nodes[:start]]:
            examined += 1
            if not (node.clean and fits_resources(pod, node) and (not extra or _passes(extra, pod, node))):
                failed = failures(groups, pod, node)
                if failed:
                    reasons.update(failed)
                    continue
            feasible.append(node)
            if len(feasible) >= wanted:
                break
        self.next_start = (start + examined) % total
        return feasible, reasons

    def select(self, nodes: Sequence[NodeInfo], totals: Sequence[float]) -> NodeInfo:
        """The best-scored node; among equals, each is equally likely."""
        best = max(totals)
        ties = [node for node, total in zip(nodes, totals, strict=True) if total == best]
        return ties[0] if len(ties) == 1 else self.rng.choice(ties)


def _passes(predicates: tuple[Predicate, ...], pod: PodInfo, node: NodeInfo) -> bool:
    for predicate in predicates:  # noqa: SIM110 - a plain loop: this runs for every node examined
        if predicate(pod, node) is not None:
            return False
    return True
