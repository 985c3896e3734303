"""Daemon pods: how they are made from the template, and which node each is for."""

from __future__ import annotations

import copy
from typing import Any

from nodeos.controllers import pods as podutil
from nodeos.controllers.deployment.revisions import template_hash
from nodeos.controllers.ownership import owner_reference

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
Obj = dict[str, Any]


def daemon_pod(ds: Obj, node: str) -> Obj:
    """A pod for ``node``: the template, the hash label, daemon tolerations, node affinity."""
    spec = ds.get("spec") or {}
    template = spec.get("template") or {}
    pod = podutil.pod_from_template(template, ds, owner_reference(ds))
    labels = pod["metadata"].setdefault("labels", {})
    labels[HASH_LABEL] = template_hash(template)
    labels[GENERATION_LABEL] = str(ds["metadata"].get("generation") or 1)
    pod_spec = pod["spec"]
    tolerations = pod_spec.setdefault("tolerations", [])
    for key, effect in DAEMON_TOLERATIONS:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    if node:
        _pin_to(pod_spec, node)
    return pod


def _pin_to(spec: Obj, node: str) -> None:
    """Require ``metadata.name In [node]`` in every node selector term (Kubernetes'
    ReplaceDaemonSetPodNodeNameNodeAffinity), keeping the terms' label expressions."""
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    required = affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    by_name = [{"key": "metadata.name", "operator": "In", "values": [node]}]
    terms = [copy.deepcopy(t) for t in required.get("nodeSelectorTerms") or [] if t.get("matchExpressions")]
    for term in terms:
        term["matchFields"] = by_name
    required["nodeSelectorTerms"] = terms or [{"matchFields": by_name}]


def target_node(pod: Obj) -> str:
    """The node a daemon pod is on, or until it is bound, the one its affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and \
                    len(field.get("values") or []) == 1:
                return field["values"][0]
    return ""
