"""kubectl against nodeos' quota admission: create quota (a protobuf body),
get and describe it, and the 403 it prints when a create exceeds it."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  containers:
  - name: main
    image: busybox
    resources: {{requests: {{cpu: 100m, memory: 32Mi}}, limits: {{cpu: 200m, memory: 64Mi}}}}
"""

LIMIT_RANGE = """
apiVersion: v1
kind: LimitRange
metadata: {{name: defaults, namespace: {ns}}}
spec:
  limits:
  - type: Container
    default: {{cpu: 300m, memory: 128Mi}}
    defaultRequest: {{cpu: 150m, memory: 64Mi}}
    max: {{cpu: "1"}}
"""


def namespace(kubectl, name: str) -> str:
    kubectl("create", "namespace", name)
    return name


def test_create_describe_and_exceed_a_quota(kubectl):
    ns = namespace(kubectl, "quota-e2e")
    out = kubectl("create", "quota", "q", "--hard=pods=2,requests.cpu=1,limits.memory=1Gi", "-n", ns)
    assert out.stdout.strip() == "resourcequota/q created"
    for name in ("a", "b"):
        kubectl("apply", "-f", "-", input=POD.format(name=name, ns=ns))
    refused = kubectl("apply", "-f", "-", input=POD.format(name="c", ns=ns), check=False)
    assert refused.returncode == 1
    assert ('Error from server (Forbidden): error when creating "STDIN": pods "c" is forbidden: '
            "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2") in refused.stderr
    table = kubectl("get", "quota", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert table[1].split(None, 2)[2].split() == ["pods:", "2/2,", "requests.cpu:", "200m/1", "limits.memory:",
                                                  "128Mi/1Gi"]
    described = kubectl("describe", "quota", "q", "-n", ns).stdout
    rows = [line.split() for line in described.splitlines()]
    assert ["Name:", "q"] in rows and ["Namespace:", ns] in rows
    assert ["pods", "2", "2"] in rows
    assert ["requests.cpu", "200m", "1"] in rows
    assert ["limits.memory", "128Mi", "1Gi"] in rows
    status = json.loads(kubectl("get", "resourcequota", "q", "-n", ns, "-o", "json").stdout)["status"]
    assert status["used"] == {"limits.memory": "128Mi", "pods": "2", "requests.cpu": "200m"}


def test_a_limit_range_defaults_and_bounds_containers(kubectl):
    ns = namespace(kubectl, "limits-e2e")
    kubectl("apply", "-f", "-", input=LIMIT_RANGE.format(ns=ns))
    kubectl("run", "plain", "--image=busybox", "-n", ns)
    resources = json.loads(kubectl("get", "pod", "plain", "-n", ns, "-o", "json").stdout)["spec"]["containers"][0]
    assert resources["resources"] == {"limits": {"cpu": "300m", "memory": "128Mi"},
                                      "requests": {"cpu": "150m", "memory": "64Mi"}}
    big = kubectl("run", "big", "--image=busybox", "-n", ns, "--overrides",
                  json.dumps({"spec": {"containers": [{"name": "big", "image": "busybox",
                                                       "resources": {"limits": {"cpu": "2"}}}]}}), check=False)
    assert big.returncode == 1
    assert ('Error from server (Forbidden): pods "big" is forbidden: '
            "maximum cpu usage per Container is 1, but limit is 2") in big.stderr
    assert kubectl("get", "limits", "-n", ns).stdout.split()[:4] == ["NAME", "CREATED", "AT", "defaults"]
    described = kubectl("describe", "limitrange", "defaults", "-n", ns).stdout
    assert "Container" in described and "300m" in described
