"""Three masters on a 3-member etcd with a real Podman worker following all of them.

The HA tests (test_ha.py) run on simulated workers; this one runs the pods for
real: the leading master is SIGKILLed, a Deployment is created through a
survivor at once, and its pods must come up Running on the worker's Podman,
with pod IPs from the worker's podCIDR — the new leader's scheduler bound
them, its controller manager made them, and the worker's agent, which was
talking to the killed master, followed the masters over.
"""

from __future__ import annotations

import ipaddress
import json
import uuid

import httpx
import pytest

from nodeos.daemon import NODE_NETWORK
from tests.daemon import Daemon, free_port
from tests.ha import HACluster
from tests.podman import CONTAINERS_CONF, remove_labelled
from tests.waiting import poll

pytestmark = pytest.mark.slow


@pytest.fixture
def ha_with_podman_worker(tmp_path, podman_socket, test_image):
    with HACluster(tmp_path, etcd_members=3, masters=3, workers=0) as ha:
        servers = ", ".join(json.dumps(m.url) for m in ha.masters)
        worker = Daemon(tmp_path / "worker", role="worker", name=f"podman-{uuid.uuid4().hex[:6]}",
                        server=ha.masters[0].url, disable=NODE_NETWORK,
                        extra_config=(f"servers = [{servers}]\n"
                                      f'[agent]\naddress = "127.0.0.1"\nport = {free_port()}\nheartbeat_seconds = 2\n'
                                      f'[podman]\nsocket = "{podman_socket}"\nmanage = false\n'
                                      f'containers_conf = "{CONTAINERS_CONF}"\n'))
        ha.workers.append(worker)  # stopped with the cluster
        worker.start()
        yield ha, worker, test_image


def test_a_deployment_made_while_the_leading_master_is_down_runs_on_the_real_worker(ha_with_podman_worker):
    ha, worker, image = ha_with_podman_worker
    namespace = f"t-{uuid.uuid4().hex[:6]}"
    try:
        leaders = [ha.leader("scheduler"), ha.leader("controller-manager")]
        assert None not in leaders, "no leader before the kill"
        for master in leaders:
            ha.kill_master(master)  # one master, or the two that lead
        survivor = ha.live_masters[0].url
        _post(survivor, "/api/v1/namespaces", {"metadata": {"name": namespace}})
        _post(survivor, f"/apis/apps/v1/namespaces/{namespace}/deployments", {
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "Never",
                                                           "command": ["sleep", "3600"]}]}}},
        })

        def running() -> list[dict] | None:
            pods = httpx.get(f"{ha.url}/api/v1/namespaces/{namespace}/pods", timeout=5).json()["items"]
            ok = len(pods) == 2 and all((p.get("status") or {}).get("phase") == "Running" for p in pods)
            return pods if ok else None

        pods = poll(running, 90, "the Deployment's 2 pods Running on the Podman worker", ha.logs)
        node = httpx.get(f"{ha.url}/api/v1/nodes/{worker.name}", timeout=5).json()
        pod_cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
        for pod in pods:
            assert pod["spec"]["nodeName"] == worker.name
            assert ipaddress.ip_address(pod["status"]["podIP"]) in pod_cidr
    finally:
        remove_labelled(f"nodeos.pod-namespace={namespace}")


def _post(url: str, path: str, body: dict) -> None:
    response = httpx.post(url + path, json=body, timeout=10)
    assert response.status_code == 201, response.text
