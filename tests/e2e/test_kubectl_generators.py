"""kubectl's imperative generators, which send protobuf bodies, against a nodeos daemon.

``create -f``/``apply`` send JSON; ``create namespace|deployment|service``,
``debug node/...`` and ``drain`` send ``application/vnd.kubernetes.protobuf``.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

NODE = "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n"


def get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def namespace(kubectl, name: str) -> str:
    assert kubectl("create", "namespace", name).stdout.strip() == f"namespace/{name} created"
    return name


def test_create_namespace(kubectl):
    namespace(kubectl, "gen-x")
    assert get_json(kubectl, "namespace", "gen-x")["status"]["phase"] == "Active"
    again = kubectl("create", "namespace", "gen-x", check=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): namespaces "gen-x" already exists' in again.stderr


def test_create_deployment(kubectl):
    ns = namespace(kubectl, "gen-deployment")
    out = kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=80", "-n", ns)
    assert out.stdout.strip() == "deployment.apps/web created"
    spec = get_json(kubectl, "deploy", "web", "-n", ns)["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["template"]["metadata"]["labels"] == {"app": "web"}
    [container] = spec["template"]["spec"]["containers"]
    assert container["name"] == "nginx" and container["image"] == "nginx:1.27"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_create_deployment_with_a_command(kubectl):
    ns = namespace(kubectl, "gen-command")
    kubectl("create", "deployment", "sleeper", "--image=busybox:1.36", "-n", ns, "--", "sleep", "100")
    spec = get_json(kubectl, "deploy", "sleeper", "-n", ns)["spec"]
    assert spec["replicas"] == 1
    assert spec["template"]["spec"]["containers"][0]["command"] == ["sleep", "100"]


def test_create_services(kubectl):
    ns = namespace(kubectl, "gen-services")
    out = kubectl("create", "service", "nodeport", "web", "--tcp=80:8080", "-n", ns)
    assert out.stdout.strip() == "service/web created"
    spec = get_json(kubectl, "service", "web", "-n", ns)["spec"]
    assert spec["type"] == "NodePort" and spec["selector"] == {"app": "web"}
    [port] = spec["ports"]
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")
    assert 30000 <= port["nodePort"] <= 32767

    kubectl("create", "service", "clusterip", "api", "--tcp=443:8443", "-n", ns)
    spec = get_json(kubectl, "service", "api", "-n", ns)["spec"]
    assert spec["type"] == "ClusterIP" and spec["clusterIP"].startswith("10.")
    assert spec["ports"][0]["targetPort"] == 8443 and "nodePort" not in spec["ports"][0]

    kubectl("create", "service", "clusterip", "headless", "--clusterip=None", "-n", ns)
    assert get_json(kubectl, "service", "headless", "-n", ns)["spec"]["clusterIP"] == "None"

    kubectl("create", "service", "externalname", "ext", "--external-name=example.com", "-n", ns)
    spec = get_json(kubectl, "service", "ext", "-n", ns)["spec"]
    assert (spec["type"], spec["externalName"]) == ("ExternalName", "example.com")


def test_expose_a_deployment_made_by_create(kubectl):
    ns = namespace(kubectl, "gen-expose")
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--port=80", "-n", ns)
    out = kubectl("expose", "deployment", "web", "--port=8080", "--name=web2", "-n", ns)
    assert out.stdout.strip() == "service/web2 exposed"
    spec = get_json(kubectl, "service", "web2", "-n", ns)["spec"]
    assert spec["selector"] == {"app": "web"}
    assert [(p["port"], p["targetPort"]) for p in spec["ports"]] == [(8080, 8080)]


def test_debug_node_then_drain_it(kubectl):
    # debug creates a host-namespaces pod from protobuf; drain deletes it with
    # protobuf DeleteOptions whose gracePeriodSeconds=0 must survive decoding.
    ns = namespace(kubectl, "gen-debug")
    kubectl("create", "-f", "-", input=NODE.format(name="gen-node"))
    try:
        out = kubectl("debug", "node/gen-node", "--image=busybox:1.36", "--profile=general", "-n", ns)
        assert "Creating debugging pod node-debugger-gen-node-" in out.stdout
        [pod] = get_json(kubectl, "pods", "-n", ns)["items"]
        spec = pod["spec"]
        assert spec["nodeName"] == "gen-node" and spec["hostPID"] and spec["hostNetwork"]
        assert [(v["name"], v["hostPath"]["path"]) for v in spec["volumes"]] == [("host-root", "/")]
        assert spec["tolerations"] == [{"operator": "Exists"}]

        out = kubectl("drain", "gen-node", "--disable-eviction", "--force", "--grace-period=0", "--timeout=20s")
        assert "node/gen-node drained" in out.stdout
        assert get_json(kubectl, "pods", "-n", ns)["items"] == []
    finally:
        kubectl("delete", "node", "gen-node", "--wait=false", check=False)
