"""The spec generators' output runs in real Podman, and means there what it means in Kubernetes.

One pod on a Podman network of the test's own, two long-running containers
sharing an emptyDir on disk and one on tmpfs, env with $(VAR) expansion and a
fieldRef, limits, a non-root user; then four short containers that show
command/args semantics against an image with both ENTRYPOINT and CMD.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from nodeos.agent import volumes
from nodeos.agent.podman import specgen
from tests.podman import TEST_IMAGE, podman, remove_labelled

ENTRYPOINT_IMAGE = "localhost/nodeos-test/entrypoint:1"


def ensure_entrypoint_image(tmp_path: Path) -> str:
    """The test image with ``ENTRYPOINT ["echo", "ep"]`` and ``CMD ["cmd"]``."""
    if podman("image", "exists", ENTRYPOINT_IMAGE, check=False).returncode != 0:
        (tmp_path / "Containerfile").write_text(f'FROM {TEST_IMAGE}\nENTRYPOINT ["echo", "ep"]\nCMD ["cmd"]\n')
        podman("build", "-q", "-t", ENTRYPOINT_IMAGE, str(tmp_path))
    return ENTRYPOINT_IMAGE


def create_network(name: str) -> ipaddress.IPv4Network:
    for _ in range(20):
        subnet = ipaddress.ip_network(f"10.{secrets.randbelow(50) + 200}.{secrets.randbelow(254) + 1}.0/24")
        if podman("network", "create", "--subnet", str(subnet), name, check=False).returncode == 0:
            return subnet
    raise RuntimeError("no free subnet for the test network")


def wait_for_logs(container: str, want: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        logs = podman("logs", container, check=False).stdout
        if want in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.1)


def k8s_pod(tag: str) -> dict:
    shared_env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                  {"name": "GREETING", "value": "hello from $(POD_NAME)"}]
    mounts = [{"name": "shared", "mountPath": "/shared"}, {"name": "mem", "mountPath": "/mem"}]
    return {
        "metadata": {"name": f"specgen-{tag}", "namespace": "default", "uid": f"{tag}-uid"},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "volumes": [{"name": "shared", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory"}}],
            "containers": [
                {"name": "writer", "env": shared_env, "volumeMounts": mounts,
                 "command": ["sh", "-c", "echo $(GREETING) > /shared/msg; echo in-memory > /mem/msg; sleep 300"]},
                {"name": "reader", "env": shared_env, "volumeMounts": mounts, "workingDir": "/shared",
                 "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                 "command": ["sh", "-c"],
                 "args": ["while [ ! -f msg ] || [ ! -f /mem/msg ]; do sleep 0.1; done; "
                          "echo read=$(cat msg) mem=$(cat /mem/msg) env=$GREETING k8s=$(GREETING) id=$(id -u); "
                          "grep ' /mem ' /proc/mounts; hostname; sleep 300"]},
            ],
        },
    }


@pytest.fixture
def libpod(podman_socket):
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(podman_socket)), base_url="http://d/v4.0.0/libpod",
                      timeout=60) as client:
        yield client


def create(libpod: httpx.Client, path: str, spec: dict) -> str:
    response = libpod.post(path, json=spec)
    assert response.status_code == 201, response.text
    return response.json()["Id"]


def run_container(libpod, pod: dict, container: dict, pod_id: str, label: dict[str, str], mounts=(),
                  image: str = TEST_IMAGE) -> str:
    env, problems = specgen.container_env(pod, container, pod_ip=None, host_ip="127.0.0.1", node_name="n1",
                                          services=[])
    assert problems == []
    name = f"{pod['metadata']['name']}-{container['name']}"
    spec, problems = specgen.container_spec(pod, container, pod_id=pod_id, name=name, labels=label, env=env,
                                            mounts=list(mounts), image=image)
    assert problems == []
    container_id = create(libpod, "/containers/create", spec)
    assert libpod.post(f"/containers/{container_id}/start").status_code == 204
    return name


def test_specs_run_in_podman_with_shared_volumes_env_limits_and_kubernetes_command_semantics(
        libpod, test_image, tmp_path):
    tag = secrets.token_hex(4)
    label = {"nodeos.test": f"specgen-{tag}"}
    network = f"nodeos-test-specgen-{tag}"
    pod = k8s_pod(tag)
    pod_dir = tmp_path / "pod"
    subnet = create_network(network)
    try:
        sources, problems = volumes.prepare_volumes(pod, pod_dir)
        assert problems == []
        pod_id = create(libpod, "/pods/create",
                        specgen.pod_spec(pod, network=network, labels=label, name=pod["metadata"]["name"]))
        assert libpod.post(f"/pods/{pod_id}/start").status_code in (200, 304)

        names = {}
        for container in pod["spec"]["containers"]:
            mounts, problems = volumes.container_mounts(container, sources)
            assert problems == []
            names[container["name"]] = run_container(libpod, pod, container, pod_id, label, mounts)

        logs = wait_for_logs(names["reader"], pod["metadata"]["name"] + "\n")
        lines = logs.splitlines()
        want = f"hello from {pod['metadata']['name']}"
        assert lines[0] == f"read={want} mem=in-memory env={want} k8s={want} id=1000", logs
        assert lines[1].split()[2] == "tmpfs", logs  # the Memory emptyDir is one tmpfs, seen by both
        assert lines[2] == pod["metadata"]["name"], logs  # the pod's hostname

        host_config = json.loads(podman("inspect", names["reader"]).stdout)[0]["HostConfig"]
        assert host_config["Memory"] == 64 * 2**20
        assert host_config["MemorySwap"] == 64 * 2**20
        assert host_config["CpuQuota"] == 50_000 and host_config["CpuPeriod"] == 100_000

        infra = json.loads(podman("pod", "inspect", pod_id).stdout)["InfraContainerID"]
        networks = json.loads(podman("inspect", infra).stdout)[0]["NetworkSettings"]["Networks"]
        assert ipaddress.ip_address(networks[network]["IPAddress"]) in subnet

        image = ensure_entrypoint_image(tmp_path)
        cases = {"neither": ({}, "ep cmd"), "args": ({"args": ["a1"]}, "ep a1"),
                 "command": ({"command": ["echo", "c1"]}, "c1"),
                 "both": ({"command": ["echo", "c1"], "args": ["$(POD_NAME)"]}, f"c1 {pod['metadata']['name']}")}
        started = {case: run_container(libpod, pod, {"name": case, "env": pod["spec"]["containers"][0]["env"][:1],
                                                      **fields}, pod_id, label, image=image)
                   for case, (fields, _) in cases.items()}
        for case, (_, want) in cases.items():
            assert wait_for_logs(started[case], want).strip() == want, case
    finally:
        remove_labelled(f"nodeos.test={label['nodeos.test']}")
        podman("network", "rm", "-f", network, check=False)
        volumes.remove_pod_dir(pod_dir)
