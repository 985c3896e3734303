"""A Deployment's ReplicaSets: which one is new, their names and revisions.

A Deployment never edits pods: each version of its pod template gets a
ReplicaSet of its own, named ``<deployment>-<pod-template-hash>``. The hash
(a stable short hash of the template, as Kubernetes' FNV-32a + "safe"
alphabet) is also added to the ReplicaSet's selector, template labels and
labels, so the ReplicaSets of one Deployment never select each other's pods.

Which ReplicaSet is the *new* one is decided by template equality ignoring
that label, not by the name: so a rollback (``kubectl rollout undo``
patches the old template back into the Deployment) finds the old
ReplicaSet again and scales it up, and a hash that changes between versions
of nodeos never orphans a running ReplicaSet.

Revisions live in annotations: each ReplicaSet carries
``deployment.kubernetes.io/revision``; the new one always gets the highest,
``max(old) + 1``, and when an old ReplicaSet becomes new again its former
revisions are kept in ``deployment.kubernetes.io/revision-history``. The
Deployment carries the revision of its new ReplicaSet. ``kubectl rollout
history`` and ``undo`` read exactly these.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from nodeos.controllers.ownership import owner_reference
from nodeos.controllers.pods import parse_time

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Annotations of the Deployment that are not copied to its ReplicaSets (and
# that ``kubectl rollout undo`` keeps from the Deployment).
NOT_COPIED = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY,
    DESIRED_REPLICAS, MAX_REPLICAS, "deprecated.deployment.rollback.to",
})
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: no words in names
_HISTORY_CHARS = 1024


def _semantic(value: Any) -> Any:
    """The value with nulls, empty maps and empty lists left out, recursively.

    Kubernetes compares templates as typed Go structs, where a null field,
    an absent one and an empty map or list are all the same thing; clients
    re-encoding a template (``kubectl rollout undo`` sends
    ``creationTimestamp: null``) must not make it look new."""
    if isinstance(value, dict):
        kept = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short name-safe hash of the pod template (FNV-32a over its canonical
    JSON, plus the collision count when a hash once collided)."""
    canonical = _semantic(template)
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in str(value))


def _without_hash(template: Obj) -> Obj:
    clean = copy.deepcopy(template or {})
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return clean


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are the same but for the pod-template-hash label."""
    return _semantic(_without_hash(a)) == _semantic(_without_hash(b))


def revision(obj: Obj) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    try:
        return int(value)
    except ValueError:
        return 0


def max_revision(replica_sets: list[Obj]) -> int:
    return max((revision(rs) for rs in replica_sets), default=0)


def by_age(replica_sets: list[Obj]) -> list[Obj]:
    """Oldest first (creationTimestamp, then name), as ReplicaSetsByCreationTimestamp."""
    return sorted(replica_sets, key=_age_key)


def split_new_and_old(deployment: Obj, replica_sets: list[Obj]) -> tuple[Obj | None, list[Obj]]:
    """The oldest ReplicaSet whose template is the Deployment's, and all the others."""
    template = deployment["spec"].get("template") or {}
    new = next((rs for rs in by_age(replica_sets)
                if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template)), None)
    return new, [rs for rs in replica_sets if rs is not new]


def new_replica_set(deployment: Obj, new_revision: int, replicas: int, max_surge: int) -> Obj:
    """The ReplicaSet for the Deployment's current template, ready to create."""
    meta, spec = deployment["metadata"], deployment["spec"]
    collisions = (deployment.get("status") or {}).get("collisionCount")
    pod_hash = template_hash(spec.get("template") or {}, collisions)
    template = copy.deepcopy(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = pod_hash
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in NOT_COPIED}
    annotations.update({REVISION: str(new_revision), DESIRED_REPLICAS: str(replicas_of(deployment)),
                        MAX_REPLICAS: str(replicas_of(deployment) + max_surge)})
    rs_spec: Obj = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": f"{meta['name']}-{pod_hash}", "namespace": meta.get("namespace"),
                     "labels": dict(template["metadata"]["labels"]), "annotations": annotations,
                     "ownerReferences": [owner_reference(deployment)]},
        "spec": rs_spec,
    }


def sync_new_annotations(deployment: Obj, rs: Obj, new_revision: int) -> bool:
    """Bring an existing new ReplicaSet's annotations up to date (in place):
    the Deployment's copied annotations, and its revision raised to
    ``new_revision`` (keeping the revisions it had in its history).
    True if anything changed."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((deployment["metadata"].get("annotations") or {}).items()):
        if key not in NOT_COPIED and annotations.get(key) != value:
            annotations[key] = value
            changed = True
    old = annotations.get(REVISION, "")
    old_revision = revision(rs)
    if old and not old.isdigit():
        return changed  # not ours to interpret
    if old_revision < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h] + [old]
            while len(",".join(history)) > _HISTORY_CHARS:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    return changed


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """Record the Deployment size the ReplicaSet was scaled for (proportional
    scaling reads it back). True if it changed (in place)."""
    annotations = rs["metadata"].setdefault("annotations", {})
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)}
    if all(annotations.get(k) == v for k, v in wanted.items()):
        return False
    annotations.update(wanted)
    return True


def annotated_int(rs: Obj, key: str) -> int | None:
    value = ((rs.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def replicas_of(obj: Obj) -> int:
    """``spec.replicas`` (the API defaults it to 1)."""
    value = (obj.get("spec") or {}).get("replicas")
    return int(value) if isinstance(value, int) else 1


def history_to_clean(deployment: Obj, old: list[Obj]) -> list[Obj]:
    """Old ReplicaSets past ``revisionHistoryLimit``, oldest revision first,
    that are fully scaled down and settled: those may be deleted."""
    limit = deployment["spec"].get("revisionHistoryLimit")
    if not isinstance(limit, int):
        return []
    alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
    excess = len(alive) - limit
    if excess <= 0:
        return []
    ordered = sorted(alive, key=lambda rs: (revision(rs), *_age_key(rs)))[:excess]
    return [rs for rs in ordered if _settled_at_zero(rs)]


def _age_key(rs: Obj) -> tuple[float, str]:
    created = parse_time(rs["metadata"].get("creationTimestamp"))
    return (created.timestamp() if created else 0.0, rs["metadata"]["name"])


def _settled_at_zero(rs: Obj) -> bool:
    status = rs.get("status") or {}
    generation = int(rs["metadata"].get("generation") or 0)
    return (replicas_of(rs) == 0 and not status.get("replicas")
            and int(status.get("observedGeneration") or 0) >= generation)
