"""The DaemonSet controller (``controller``), the pods it makes (``pods``) and
its node-by-node plan (``plan``); see ``controller`` for how it works."""

from nodeos.controllers.daemonset.controller import DAEMONSETS, DaemonSetController, build
from nodeos.controllers.daemonset.plan import Plan, fits, max_unavailable
from nodeos.controllers.daemonset.pods import HASH_LABEL, daemon_pod, target_node

__all__ = ["DAEMONSETS", "HASH_LABEL", "DaemonSetController", "Plan", "build", "daemon_pod", "fits",
           "max_unavailable", "target_node"]
