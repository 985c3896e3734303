"""Pods consuming ConfigMaps and Secrets on real Podman: environment, volumes (modes, read-only, a tmpfs for
secrets), waiting for a missing object until it is created, and volume refreshes in a running pod."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.podman import podman
from tests.podnode import container_status, is_ready, phase
from tests.waiting import poll


@pytest.fixture
def node(podman_node):
    return podman_node


@pytest.fixture
def ns(node):
    namespace = node.namespace()
    yield namespace
    httpx.delete(f"{node.url}/api/v1/namespaces/{namespace}/pods", params={"gracePeriodSeconds": 0}, timeout=10)


def config_map(node, ns, name, data):
    return node.post(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": name}, "data": data})


def secret(node, ns, name, data):
    return node.post(f"/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": name}, "stringData": data})


def logs(ns: str, pod_name: str) -> str:
    out = podman("ps", "-a", "--format", "json", "--filter", f"label=nodeos.pod-namespace={ns}",
                 "--filter", f"label=nodeos.pod-name={pod_name}").stdout
    (found,) = [c for c in json.loads(out or "[]") if "nodeos.container-name" in (c.get("Labels") or {})]
    return podman("logs", found["Id"]).stdout


def waiting(pod: dict) -> dict:
    return (container_status(pod, "main").get("state") or {}).get("waiting") or {}


def running(pod: dict) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


SCRIPT = """
echo "MODE=$MODE PASS=$PASS DB_USER=$DB_USER DB_PASS=$DB_PASS LEVEL=$LEVEL"
cat /etc/conf/app.conf; cat /etc/creds/db/pass; echo
stat -L -c %a /etc/conf/app.conf /etc/creds/db/pass
grep ' /etc/creds ' /proc/mounts | cut -d' ' -f3
touch /etc/conf/new 2>/dev/null && echo writable || echo read-only
"""


def test_env_and_volumes_from_a_config_map_and_a_secret(node, ns, test_image):
    config_map(node, ns, "app", {"MODE": "fast", "LEVEL": "3", "app.conf": "x=1", "1st": "not a variable name"})
    secret(node, ns, "db", {"USER": "admin", "PASS": "s3cr3t"})
    container = {
        "name": "main", "image": test_image, "command": ["sh", "-c", SCRIPT],
        "envFrom": [{"configMapRef": {"name": "app"}}, {"secretRef": {"name": "db"}, "prefix": "DB_"}],
        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "MODE"}}},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "PASS"}}},
                {"name": "LEVEL", "value": "$(LEVEL)0"}],
        "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf"}, {"name": "creds", "mountPath": "/etc/creds"}],
    }
    node.create_pod(ns, "both", [container], restartPolicy="Never", volumes=[
        {"name": "conf", "configMap": {"name": "app", "defaultMode": 0o640}},
        {"name": "creds", "secret": {"secretName": "db", "items": [{"key": "PASS", "path": "db/pass", "mode": 0o400}]}},
    ])
    pod = node.wait_pod(ns, "both", lambda p: phase(p) in ("Succeeded", "Failed"))
    assert phase(pod) == "Succeeded", pod["status"]
    assert logs(ns, "both").splitlines() == [
        "MODE=fast PASS=s3cr3t DB_USER=admin DB_PASS=s3cr3t LEVEL=30",
        "x=1s3cr3t",
        "640", "400",
        "tmpfs",
        "read-only",
    ]
    node.wait_for(lambda: any(e["reason"] == "InvalidEnvironmentVariableNames"
                              and e["message"].startswith(f"Keys [1st] from the EnvFrom configMap {ns}/app ")
                              for e in node.events(ns, "both")), 10, "the InvalidEnvironmentVariableNames warning")


def test_a_missing_config_map_or_secret_holds_the_pod_until_it_is_created(node, ns, test_image):
    env_pod = {"name": "main", "image": test_image, "command": ["sleep", "3600"],
               "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "k"}}}]}
    node.create_pod(ns, "env", [env_pod], terminationGracePeriodSeconds=0)
    volume_pod = {"name": "main", "image": test_image, "command": ["sleep", "3600"],
                  "volumeMounts": [{"name": "s", "mountPath": "/s"}]}
    node.create_pod(ns, "vol", [volume_pod], terminationGracePeriodSeconds=0,
                    volumes=[{"name": "s", "secret": {"secretName": "later"}}])
    pod = node.wait_pod(ns, "env", lambda p: waiting(p).get("reason") == "CreateContainerConfigError")
    assert waiting(pod)["message"] == 'configmap "later" not found'
    node.wait_for(lambda: any(e["reason"] == "FailedMount" and 'secret "later" not found' in e["message"]
                              for e in node.events(ns, "vol")), 30, "a FailedMount event")
    assert phase(node.pod(ns, "vol")) == "Pending"
    config_map(node, ns, "later", {"k": "v"})
    secret(node, ns, "later", {"k": "v"})
    node.wait_pod(ns, "env", running, timeout=30)  # the first retry comes 10 s after the first try
    node.wait_pod(ns, "vol", running, timeout=30)


def test_a_config_map_update_reaches_the_running_pods_files(node, ns, test_image):
    config_map(node, ns, "live", {"k": "one"})
    container = {"name": "main", "image": test_image, "command": ["sleep", "3600"],
                 "volumeMounts": [{"name": "v", "mountPath": "/etc/live"}]}
    node.create_pod(ns, "live", [container], terminationGracePeriodSeconds=0,
                    volumes=[{"name": "v", "configMap": {"name": "live"}}])
    node.wait_pod(ns, "live", running)
    out = podman("ps", "--format", "{{.ID}}", "--filter", f"label=nodeos.pod-namespace={ns}",
                 "--filter", "label=nodeos.container-name=main").stdout.split()
    (cid,) = out

    def content() -> str:
        return podman("exec", cid, "cat", "/etc/live/k").stdout

    assert content() == "one"
    response = httpx.patch(f"{node.url}/api/v1/namespaces/{ns}/configmaps/live", json={"data": {"k": "two"}},
                           headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert response.status_code == 200, response.text
    poll(lambda: content() == "two", 25, "the updated file in the container", interval=1)  # refreshed every 10 s
