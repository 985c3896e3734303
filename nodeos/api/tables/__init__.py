"""Server-side printing: ``meta.k8s.io/v1`` Tables, as ``kubectl get`` asks for them.

kubectl requests ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and
prints the columns the server defines; without a Table it shows only NAME
and AGE. Columns and cell formats here are those of Kubernetes' own printers
(``pkg/printers/internalversion``) so that output looks the same. The server
always sends the wide (priority 1) columns; kubectl hides them unless ``-o wide``.

Printers never raise on odd objects: a field that is missing or of the wrong
type prints as ``<none>``/``<unknown>``/empty, and an object a printer still
cannot handle gets a row with only its name.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.api.tables import core, pods, policy, workloads
from nodeos.api.tables._common import NAME_DESCRIPTION, Printer, column, get, name, text
from nodeos.errors import ApiError

__all__ = ["INCLUDE_OBJECT", "column_definitions", "table_for", "table_rows"]

log = logging.getLogger(__name__)

INCLUDE_OBJECT = ("None", "Metadata", "Object")

_PRINTERS: dict[str, tuple[list[dict[str, Any]], Printer]] = {
    "Pod": (pods.COLUMNS, pods.print_pod),
    "Node": (core.NODE_COLUMNS, core.print_node),
    "Namespace": (core.NAMESPACE_COLUMNS, core.print_namespace),
    "Service": (core.SERVICE_COLUMNS, core.print_service),
    "Endpoints": (core.ENDPOINTS_COLUMNS, core.print_endpoints),
    "Event": (core.EVENT_COLUMNS, core.print_event),
    "Lease": (core.LEASE_COLUMNS, core.print_lease),
    "ReplicationController": (workloads.REPLICAS_COLUMNS, workloads.print_replication_controller),
    "ReplicaSet": (workloads.REPLICAS_COLUMNS, workloads.print_replica_set),
    "Deployment": (workloads.DEPLOYMENT_COLUMNS, workloads.print_deployment),
    "DaemonSet": (workloads.DAEMONSET_COLUMNS, workloads.print_daemon_set),
    "ResourceQuota": (policy.QUOTA_COLUMNS, policy.print_resource_quota),
    "ConfigMap": (policy.CONFIG_MAP_COLUMNS, policy.print_config_map),
    "Secret": (policy.SECRET_COLUMNS, policy.print_secret),
}

# Kubernetes' default table for kinds without a printer.
_DEFAULT_COLUMNS = [
    column("Name", NAME_DESCRIPTION, format_="name"),
    column("Created At", "CreationTimestamp is a timestamp representing the server time when this object "
           "was created.", type_="date"),
]


def _print_default(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [name(obj), text(obj, "metadata", "creationTimestamp")]


def column_definitions(resource: Resource) -> list[dict[str, Any]]:
    """The ``columnDefinitions`` of ``resource``'s table (fresh copies)."""
    columns = _PRINTERS.get(resource.kind, (_DEFAULT_COLUMNS, _print_default))[0]
    return [dict(c) for c in columns]


def table_rows(resource: Resource, objects: list[dict[str, Any]], include_object: str = "Metadata",
               now: datetime | None = None) -> list[dict[str, Any]]:
    """The rows for ``objects``, one each; a watch event in table mode carries one.

    ``include_object`` is the ``includeObject`` query parameter: "None",
    "Metadata" (a PartialObjectMetadata, kubectl's default) or "Object".
    """
    if include_object not in INCLUDE_OBJECT:
        raise ApiError.bad_request(f'includeObject: Unsupported value: "{include_object}": supported values: '
                                   '"None", "Metadata", "Object"')
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    columns, printer = _PRINTERS.get(resource.kind, (_DEFAULT_COLUMNS, _print_default))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": _cells(printer, obj, now, len(columns))}
        if resource.kind == "Pod":
            conditions = pods.row_conditions(obj)
            if conditions:
                row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = _partial_metadata(obj)
        rows.append(row)
    return rows


def _cells(printer: Printer, obj: Any, now: datetime, width: int) -> list[Any]:
    """The printer's cells; if it fails on a malformed object, the name and blanks."""
    try:
        cells = printer(obj if isinstance(obj, Mapping) else {}, now)
    except Exception:  # a printer bug must not fail a whole list
        log.exception("printing %s failed", name(obj))
        cells = [name(obj)]
    return (cells + [""] * width)[:width]


def _partial_metadata(obj: Any) -> dict[str, Any]:
    metadata = get(obj, "metadata")
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": copy.deepcopy(metadata) if isinstance(metadata, Mapping) else {},
    }


def table_for(resource: Resource, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
              list_meta: dict[str, Any] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A complete Table for a list (or a single object): columns, rows, and the list's metadata.

    ``list_meta`` should carry ``resourceVersion`` (and ``continue`` when
    paging): kubectl needs them to watch and page.
    """
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
        "columnDefinitions": column_definitions(resource),
        "rows": table_rows(resource, objects, include_object, now),
    }
