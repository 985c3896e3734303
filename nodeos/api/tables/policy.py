"""Printers for ResourceQuotas, ConfigMaps and Secrets (LimitRanges use the default table, as in Kubernetes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nodeos.api.tables._common import AGE_COLUMN, NAME_COLUMN, Row, age, column, mapping, name

QUOTA_COLUMNS = [
    NAME_COLUMN,
    AGE_COLUMN,
    column("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
    column("Limit", "Limits control the maximum amount of cpu/memory that a container may use independent of "
           "contention on the node."),
]


def print_resource_quota(quota: Mapping[str, Any], now: datetime) -> Row:
    """``pods: 1/2, requests.cpu: 500m/1`` — used/hard per resource, limits.* in their own column."""
    hard, used = mapping(quota, "status", "hard"), mapping(quota, "status", "used")
    requests, limits = [], []
    for resource in sorted(str(r) for r in hard):
        cell = f"{resource}: {_quantity(used.get(resource, '0'))}/{_quantity(hard[resource])}"
        (limits if resource.split(".")[0] == "limits" and "." in resource else requests).append(cell)
    return [name(quota), age(quota, now), ", ".join(requests), ", ".join(limits)]


def _quantity(value: Any) -> str:
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else "0"


DATA_COLUMN = column("Data", "Number of keys in the data.", type_="integer")
CONFIG_MAP_COLUMNS = [NAME_COLUMN, DATA_COLUMN, AGE_COLUMN]
SECRET_COLUMNS = [NAME_COLUMN, column("Type", "The type of the secret."), DATA_COLUMN, AGE_COLUMN]


def print_config_map(config_map: Mapping[str, Any], now: datetime) -> Row:
    keys = len(mapping(config_map, "data")) + len(mapping(config_map, "binaryData"))
    return [name(config_map), keys, age(config_map, now)]


def print_secret(secret: Mapping[str, Any], now: datetime) -> Row:
    kind = secret.get("type")
    return [name(secret), kind if isinstance(kind, str) else "", len(mapping(secret, "data")), age(secret, now)]
