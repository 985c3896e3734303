"""Printers for the pod controllers: ReplicationController, ReplicaSet, Deployment, DaemonSet."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nodeos.api.tables._common import (
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    NAME_COLUMN,
    Row,
    age,
    column,
    containers_and_images,
    format_labels,
    get,
    items,
    mapping,
    name,
    number,
    selector_string,
)

SELECTOR_COLUMN = column("Selector", "Label query over pods that should match the replicas count.", priority=1)

REPLICAS_COLUMNS = [
    NAME_COLUMN,
    column("Desired", "Replicas is the number of desired replicas.", type_="integer"),
    column("Current", "Replicas is the most recently observed number of replicas.", type_="integer"),
    column("Ready", "The number of ready replicas for this replica set.", type_="integer"),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    SELECTOR_COLUMN,
]


def _template_containers(obj: Mapping[str, Any]) -> tuple[str, str]:
    return containers_and_images(items(obj, "spec", "template", "spec", "containers"))


def _desired(obj: Mapping[str, Any]) -> int:
    """``spec.replicas``, which Kubernetes defaults to 1."""
    return number(obj, "spec", "replicas", default=1)


def _replicas_row(obj: Mapping[str, Any], now: datetime, selector: str) -> Row:
    return [
        name(obj), _desired(obj), number(obj, "status", "replicas"), number(obj, "status", "readyReplicas"),
        age(obj, now), *_template_containers(obj), selector,
    ]


def print_replication_controller(rc: Mapping[str, Any], now: datetime) -> Row:
    """An RC's selector is a plain label map, printed ``k=v``."""
    return _replicas_row(rc, now, format_labels(mapping(rc, "spec", "selector")))


def print_replica_set(rs: Mapping[str, Any], now: datetime) -> Row:
    return _replicas_row(rs, now, selector_string(get(rs, "spec", "selector")))


DEPLOYMENT_COLUMNS = [
    NAME_COLUMN,
    column("Ready", "Number of the pod with ready state"),
    column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the "
           "desired template spec."),
    column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by "
           "this deployment."),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    SELECTOR_COLUMN,
]


def print_deployment(d: Mapping[str, Any], now: datetime) -> Row:
    return [
        name(d), f"{number(d, 'status', 'readyReplicas')}/{_desired(d)}",
        number(d, "status", "updatedReplicas"), number(d, "status", "availableReplicas"), age(d, now),
        *_template_containers(d), selector_string(get(d, "spec", "selector")),
    ]


DAEMONSET_COLUMNS = [
    NAME_COLUMN,
    column("Desired", "The total number of nodes that should be running the daemon pod.", type_="integer"),
    column("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run "
           "the daemon pod.", type_="integer"),
    column("Ready", "The number of nodes that should be running the daemon pod and have one or more of the "
           "daemon pod running and ready.", type_="integer"),
    column("Up-to-date", "The total number of nodes that are running updated daemon pod", type_="integer"),
    column("Available", "The number of nodes that should be running the daemon pod and have one or more of "
           "the daemon pod running and available.", type_="integer"),
    column("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE_COLUMN,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    SELECTOR_COLUMN,
]


def print_daemon_set(ds: Mapping[str, Any], now: datetime) -> Row:
    status = mapping(ds, "status")
    return [
        name(ds), number(status, "desiredNumberScheduled"), number(status, "currentNumberScheduled"),
        number(status, "numberReady"), number(status, "updatedNumberScheduled"),
        number(status, "numberAvailable"),
        format_labels(mapping(ds, "spec", "template", "spec", "nodeSelector")), age(ds, now),
        *_template_containers(ds), selector_string(get(ds, "spec", "selector")),
    ]
