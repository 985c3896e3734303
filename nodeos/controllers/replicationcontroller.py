"""The ReplicationController controller: the ReplicaSet controller over the
legacy kind, whose selector is a plain label map (``{"app": "web"}``) rather
than a LabelSelector. Everything else — claiming, expectations, deletion
order, status — is shared, as in Kubernetes, where one is an adapter of the
other."""

from __future__ import annotations

from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.api.selectors.labels import LabelSelector
from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.ownership import owner_selector
from nodeos.controllers.replicaset import ReplicaSetController

REPLICATIONCONTROLLERS = by_plural("", "v1", "replicationcontrollers")


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    resource = REPLICATIONCONTROLLERS

    def selector(self, owner: dict[str, Any]) -> LabelSelector:
        labels = (owner.get("spec") or {}).get("selector")
        return owner_selector({"matchLabels": labels} if isinstance(labels, dict) and labels else None)


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> ReplicationControllerController:
    """The controller manager names the recorder ``replication-controller``, as Kubernetes does."""
    return ReplicationControllerController(api, recorder)
