"""Minimal valid objects of every kind, fresh on each call, and helpers."""

from __future__ import annotations

import copy
from typing import Any

from nodeos.api import model
from nodeos.api.kinds import RESOURCES, Resource
from nodeos.errors import Cause

KINDS: dict[str, Resource] = {r.kind: r for r in RESOURCES}

_CONTAINER = {"name": "app", "image": "registry.local/app:1.0"}
_TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [_CONTAINER]}}

SAMPLES: dict[str, dict[str, Any]] = {
    "Pod": {"metadata": {"name": "web-0", "namespace": "default"}, "spec": {"containers": [_CONTAINER]}},
    "Service": {"metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
    "Endpoints": {"metadata": {"name": "web", "namespace": "default"},
                  "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 8080}]}]},
    "ReplicationController": {"metadata": {"name": "web", "namespace": "default"},
                              "spec": {"template": _TEMPLATE}},
    "ReplicaSet": {"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _TEMPLATE}},
    "Deployment": {"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _TEMPLATE}},
    "DaemonSet": {"metadata": {"name": "web", "namespace": "default"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _TEMPLATE}},
    "Namespace": {"metadata": {"name": "team-a"}},
    "Node": {"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.42.1.0/24"}},
    "Event": {"metadata": {"name": "web-0.17a", "namespace": "default"},
              "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
              "reason": "Scheduled", "type": "Normal"},
    "Lease": {"metadata": {"name": "node-1", "namespace": "kube-node-lease"},
              "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}},
    "Binding": {"metadata": {"name": "web-0", "namespace": "default"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}},
    "ResourceQuota": {"metadata": {"name": "q", "namespace": "default"},
                      "spec": {"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "4Gi"}}},
    "LimitRange": {"metadata": {"name": "lr", "namespace": "default"},
                   "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"},
                                        "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "2"}}]}},
    "ConfigMap": {"metadata": {"name": "settings", "namespace": "default"}, "data": {"mode": "fast"}},
    "Secret": {"metadata": {"name": "creds", "namespace": "default"}, "data": {"password": "aHVudGVyMg=="}},
}

_RICH_CONTAINER = {
    "name": "app", "image": "registry.local/app:1.0", "command": ["/app"], "args": ["--port", "8080"],
    "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090, "protocol": "UDP"}],
    "env": [{"name": "MODE", "value": "prod"},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/app",
                                                              "readOnly": True, "subPath": "app"}],
    "livenessProbe": {"httpGet": {"port": "http", "path": "/healthz"}, "initialDelaySeconds": 3},
    "readinessProbe": {"tcpSocket": {"port": 8080}},
}
_RICH_POD_SPEC = {
    "containers": [_RICH_CONTAINER],
    "initContainers": [{"name": "init", "image": "busybox@sha256:" + "0" * 64, "command": ["true"]}],
    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}, {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}}],
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
                    {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
    "activeDeadlineSeconds": 3600, "hostname": "web", "subdomain": "web",
}
RICH: dict[str, dict[str, Any]] = {
    "Pod": {"metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"},
                         "annotations": {"example.com/note": "x"}, "finalizers": ["example.com/keep"],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                              "uid": "1", "controller": True}]},
            "spec": _RICH_POD_SPEC},
    "Service": {"metadata": {"name": "web", "namespace": "default"},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "sessionAffinity": "ClientIP",
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
                                   {"name": "dns", "port": 53, "protocol": "UDP"}]}},
    "Deployment": {"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"replicas": 3, "minReadySeconds": 5,
                            "selector": {"matchLabels": {"app": "web"},
                                         "matchExpressions": [{"key": "tier", "operator": "NotIn",
                                                               "values": ["db"]}]},
                            "strategy": {"type": "RollingUpdate",
                                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {k: v for k, v in _RICH_POD_SPEC.items()
                                                  if k != "activeDeadlineSeconds"}}}},
    "Node": {"metadata": {"name": "node-1", "labels": {"kubernetes.io/hostname": "node-1"}},
             "spec": {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"],
                      "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
             "status": {"capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
                        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}},
}


def rich(kind: str) -> dict[str, Any]:
    return copy.deepcopy(RICH[kind])


def sample(kind: str) -> dict[str, Any]:
    return copy.deepcopy(SAMPLES[kind])


def defaulted(kind: str, obj: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = sample(kind) if obj is None else obj
    model.default(KINDS[kind], obj)
    return obj


def check(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    """Default, then validate, as the API server does."""
    model.default(KINDS[kind], obj)
    return model.validate(KINDS[kind], obj, old)


def fields(causes: list[Cause]) -> list[str]:
    return [c.field for c in causes]


def only(causes: list[Cause]) -> Cause:
    assert len(causes) == 1, causes
    return causes[0]
