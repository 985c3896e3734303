"""The Deployment controller: declarative rollouts over ReplicaSets.

``controller`` routes events and reconciles; ``sync`` holds one reconcile's
state and writes; ``rollout`` has the steps (rolling update, recreate,
resize, status reports); ``strategy`` and ``status`` the pure arithmetic and
conditions; ``revisions`` the ReplicaSet naming, hashing and revision
annotations that ``kubectl rollout history`` and ``undo`` rely on.
"""

from nodeos.controllers.deployment.controller import DeploymentController, build

__all__ = ["DeploymentController", "build"]
