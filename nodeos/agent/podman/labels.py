"""The labels by which the agent finds its Podman pods and containers again.

Everything the agent creates in Podman carries them, so that after a restart
(of the agent, the daemon or Podman) it adopts what runs instead of starting
it anew, and so that Podman pods nobody knows are recognised as the agent's
own garbage rather than someone else's containers.
"""

from __future__ import annotations

MANAGED = "nodeos.managed"               # "true" on every pod and container the agent made
NODE = "nodeos.node"                      # the node whose agent made it: one Podman may serve several
POD_UID = "nodeos.pod-uid"
POD_NAMESPACE = "nodeos.pod-namespace"
POD_NAME = "nodeos.pod-name"
CONTAINER_NAME = "nodeos.container-name"  # the Kubernetes container's name
ATTEMPT = "nodeos.attempt"                # 0 for the first run of a container, +1 for each restart
INIT = "nodeos.init"                      # "true" on init containers
SPEC_HASH = "nodeos.spec-hash"            # a hash of the container's spec, to notice a changed spec


def pod_labels(pod: dict) -> dict[str, str]:
    """The labels of a Kubernetes pod's Podman pod."""
    meta = pod["metadata"]
    return {MANAGED: "true", NODE: (pod.get("spec") or {}).get("nodeName") or "", POD_UID: meta["uid"],
            POD_NAMESPACE: meta["namespace"], POD_NAME: meta["name"]}


def container_labels(pod: dict, container_name: str, attempt: int, *, init: bool = False) -> dict[str, str]:
    """The labels of one run (``attempt``) of one of the pod's containers."""
    labels = {**pod_labels(pod), CONTAINER_NAME: container_name, ATTEMPT: str(attempt)}
    if init:
        labels[INIT] = "true"
    return labels


def pod_name(pod: dict) -> str:
    """The Podman pod's name: readable in `podman pod ps`, unique per Kubernetes pod (by uid)."""
    meta = pod["metadata"]
    return f"k8s_{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"


def container_name(pod: dict, container_name: str, attempt: int) -> str:
    """A Podman container's name; each restart is a new container, as with the kubelet."""
    meta = pod["metadata"]
    return f"k8s_{container_name}_{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}_{attempt}"
