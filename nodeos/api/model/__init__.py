"""The object model: defaulting and validation of every kind the API serves.

Objects stay plain JSON dicts in Kubernetes' wire shape; this package only
fills in defaults and reports what is wrong, as a list of Causes the API
server turns into one ``Invalid`` Status. Both entry points accept any JSON:
``default`` skips what has the wrong type and ``validate`` reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.api.model import cluster, config, pods, policy, services, workloads
from nodeos.api.model._fields import deeper_than, wrong_type
from nodeos.api.model.meta import validate_object_meta, validate_object_meta_update
from nodeos.errors import Cause

__all__ = ["default", "qos_class", "validate"]

MAX_DEPTH = 100

Defaulter = Callable[[dict[str, Any]], None]
Validator = Callable[[dict[str, Any], "dict[str, Any] | None"], list[Cause]]

_DEFAULTERS: dict[str, Defaulter] = {
    "Pod": pods.default_pod,
    "Service": services.default_service,
    "Endpoints": services.default_endpoints,
    "ReplicationController": workloads.default_replication_controller,
    "ReplicaSet": workloads.default_replica_set,
    "Deployment": workloads.default_deployment,
    "DaemonSet": workloads.default_daemon_set,
    "Namespace": cluster.default_namespace,
    "Node": cluster.default_node,
    "Event": cluster.default_event,
    "Lease": cluster.default_lease,
    "Binding": cluster.default_binding,
    "ResourceQuota": policy.default_resource_quota,
    "LimitRange": policy.default_limit_range,
    "ConfigMap": config.default_config_map,
    "Secret": config.default_secret,
}

_VALIDATORS: dict[str, Validator] = {
    "Pod": pods.validate_pod,
    "Service": services.validate_service,
    "Endpoints": services.validate_endpoints,
    "ReplicationController": workloads.validate_replication_controller,
    "ReplicaSet": workloads.validate_replica_set,
    "Deployment": workloads.validate_deployment,
    "DaemonSet": workloads.validate_daemon_set,
    "Namespace": cluster.validate_namespace,
    "Node": cluster.validate_node,
    "Event": cluster.validate_event,
    "Lease": cluster.validate_lease,
    "Binding": cluster.validate_binding,
    "ResourceQuota": policy.validate_resource_quota,
    "LimitRange": policy.validate_limit_range,
    "ConfigMap": config.validate_config_map,
    "Secret": config.validate_secret,
}


def default(resource: Resource, obj: dict[str, Any]) -> None:
    """Fill in Kubernetes' defaults, in place; called on create and update,
    before ``validate``. Idempotent, and never raises."""
    defaulter = _DEFAULTERS.get(resource.kind)
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)


def validate(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Every reason ``obj`` is invalid (``[]`` if none). ``old`` is the stored
    object on update, whose immutable fields ``obj`` must keep."""
    if not isinstance(obj, dict):
        return [wrong_type("", obj, "an object")]
    if deeper_than(obj, MAX_DEPTH):
        return [Cause("", f"Invalid value: nested more than {MAX_DEPTH} levels deep")]
    previous = old if isinstance(old, dict) and not deeper_than(old, MAX_DEPTH) else None
    causes = validate_object_meta(obj, resource.kind, resource.namespaced)
    if previous is not None:
        causes += validate_object_meta_update(obj, previous)
    validator = _VALIDATORS.get(resource.kind)
    if validator is not None:
        causes += validator(obj, previous)
    return causes


def qos_class(pod_spec: dict[str, Any]) -> str:
    """The QoS class (Guaranteed, Burstable, BestEffort) of a defaulted pod spec."""
    return pods.qos_class(pod_spec)
