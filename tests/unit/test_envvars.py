"""A container's environment as the kubelet makes it: $(VAR) expansion, Service variables, valueFrom."""

from __future__ import annotations

import pytest

from nodeos.agent.envvars import container_env, expand, service_env

CONTEXT = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


# The kubelet's own table (third_party/forked/golang/expansion/expand_test.go), and a few more.
@pytest.mark.parametrize(("text", "want"), [
    ("$(VAR_A)", "A"),
    ("___$(VAR_B)___", "___B___"),
    ("$(VAR_A)-$(VAR_A)", "A-A"),
    ("f000-$$VAR_A", "f000-$VAR_A"),
    ("foo\\$(VAR_C)bar", "foo\\Cbar"),
    ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
    ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
    ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
    ("$(VAR_EMPTY)", ""),
    ("$(VAR_REF)", "$(VAR_A)"),          # one level only: values are not expanded again
    ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),  # $$ escapes
    ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
    ("$$$$$$$(BIG_MONEY)", "$$$$(BIG_MONEY)"),
    ("$$$$$$$(VAR_A)", "$$$A"),
    ("$(VAR_DNE)", "$(VAR_DNE)"),        # undefined: left as written
    ("$(VAR_A", "$(VAR_A"),              # unclosed
    ("$(VAR_A)$(", "A$("),
    ("$(VAR_A)$$", "A$"),
    ("$(VAR_A)$", "A$"),                 # a lone $ at the end stays
    ("$", "$"),
    ("$$", "$"),
    ("$(", "$("),
    ("$()", "$()"),
    ("$VAR_A", "$VAR_A"),                # only the $(…) form expands
    ("$(VAR_A$)", "$(VAR_A$)"),
    ("$($(VAR_A))", "$($(VAR_A))"),      # the name runs to the first ')'
    ("$(VAR_A)$(VAR_B", "A$(VAR_B"),
    ("$(VAR_A)日本$(VAR_B)", "A日本B"),
    ("$日", "$日"),
    ("", ""),
    ("no variables", "no variables"),
])
def test_expand(text, want):
    assert expand(text, CONTEXT) == want


def svc(name, namespace="default", ip="10.96.0.10", ports=None, **spec):
    ports = [{"port": 80, "protocol": "TCP"}] if ports is None else ports
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {"clusterIP": ip, "ports": ports, **spec}}


def test_service_env_names_ports_and_docker_links():
    service = svc("my-svc", ip="10.96.0.7", ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                                                   {"name": "dns-udp", "port": 53, "protocol": "UDP"}])
    assert service_env([service]) == {
        "MY_SVC_SERVICE_HOST": "10.96.0.7",
        "MY_SVC_SERVICE_PORT": "80",
        "MY_SVC_SERVICE_PORT_HTTP": "80",
        "MY_SVC_SERVICE_PORT_DNS_UDP": "53",
        "MY_SVC_PORT": "tcp://10.96.0.7:80",
        "MY_SVC_PORT_80_TCP": "tcp://10.96.0.7:80",
        "MY_SVC_PORT_80_TCP_PROTO": "tcp",
        "MY_SVC_PORT_80_TCP_PORT": "80",
        "MY_SVC_PORT_80_TCP_ADDR": "10.96.0.7",
        "MY_SVC_PORT_53_UDP": "udp://10.96.0.7:53",
        "MY_SVC_PORT_53_UDP_PROTO": "udp",
        "MY_SVC_PORT_53_UDP_PORT": "53",
        "MY_SVC_PORT_53_UDP_ADDR": "10.96.0.7",
    }


def test_service_env_skips_services_without_a_cluster_ip_and_defaults_the_protocol():
    headless = svc("headless", ip="None")
    external = {"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}
    plain = svc("web", ports=[{"port": 8080}])
    env = service_env([headless, external, plain])
    assert not any(k.startswith(("HEADLESS_", "EXT_")) for k in env)
    assert env["WEB_PORT_8080_TCP"] == "tcp://10.96.0.10:8080"
    assert "WEB_SERVICE_PORT_" not in "".join(env)  # an unnamed port has no named variable


def test_service_env_ipv6_links_are_bracketed():
    env = service_env([svc("v6", ip="fd00::10")])
    assert env["V6_SERVICE_HOST"] == "fd00::10"
    assert env["V6_PORT"] == "tcp://[fd00::10]:80"


def pod(namespace="ns", containers=None, **spec):
    return {"metadata": {"name": "web-1", "namespace": namespace, "uid": "u-1",
                         "labels": {"app": "web"}, "annotations": {"team": "blue"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "robot", "containers": containers or [], **spec}}


def env_of(p, container, services=(), **kw):
    kw = {"pod_ip": "10.244.1.5", "host_ip": "192.0.2.1", "node_name": "n1", **kw}
    return container_env(p, container, services=services, **kw)


def test_container_env_order_precedence_and_expansion():
    services = [svc("db", namespace="ns", ip="10.96.0.5", ports=[{"port": 5432}])]
    container = {"name": "c", "env": [
        {"name": "A", "value": "a"},
        {"name": "URL", "value": "pg://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/$(A)/$(LATER)"},
        {"name": "LATER", "value": "l"},
        {"name": "A", "value": "$(A)$(A)"},          # a redefinition sees the earlier value
        {"name": "DB_SERVICE_HOST", "value": "mine"},  # the container's own wins over a Service's
        {"name": "EMPTY"},
        {"name": "ESCAPED", "value": "$$(A)"},
    ]}
    env, problems = env_of(pod(containers=[container]), container, services)
    assert problems == []
    assert env["URL"] == "pg://10.96.0.5:5432/a/$(LATER)"  # LATER was not yet defined
    assert env["A"] == "aa"
    assert env["DB_SERVICE_HOST"] == "mine"
    assert env["EMPTY"] == ""
    assert env["ESCAPED"] == "$(A)"
    assert next(iter(env)).startswith("DB_")  # Service variables first


def test_container_env_sees_the_namespace_services_and_always_the_kubernetes_service():
    services = [svc("kubernetes", ip="10.96.0.1", ports=[{"name": "https", "port": 443}]),
                svc("db", namespace="ns"), svc("other", namespace="elsewhere"), svc("dflt", namespace="default")]
    env, _ = env_of(pod(), {"name": "c"}, services)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert "DB_SERVICE_HOST" in env
    assert not any(k.startswith(("OTHER_", "DFLT_")) for k in env)
    no_links, _ = env_of(pod(enableServiceLinks=False), {"name": "c"}, services)
    assert {k.split("_")[0] for k in no_links} == {"KUBERNETES"}
    own = [*services, svc("kubernetes", namespace="ns", ip="10.96.9.9")]
    env, _ = env_of(pod(), {"name": "c"}, own)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.9.9"  # the namespace's own name wins


@pytest.mark.parametrize(("path", "want"), [
    ("metadata.name", "web-1"),
    ("metadata.namespace", "ns"),
    ("metadata.uid", "u-1"),
    ("metadata.labels['app']", "web"),
    ("metadata.labels['missing']", ""),
    ("metadata.annotations['team']", "blue"),
    ("spec.nodeName", "n1"),
    ("spec.serviceAccountName", "robot"),
    ("status.podIP", "10.244.1.5"),
    ("status.podIPs", "10.244.1.5"),
    ("status.hostIP", "192.0.2.1"),
    ("status.hostIPs", "192.0.2.1"),
])
def test_container_env_field_refs(path, want):
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}},
                                      {"name": "Y", "value": "<$(X)>"}]}
    env, problems = env_of(pod(), container)
    assert problems == []
    assert env["X"] == want
    assert env["Y"] == f"<{want}>"


def test_container_env_field_ref_fallbacks_and_problems():
    container = {"name": "c", "env": [
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "BAD", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}},
        {"name": "ALL_LABELS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}},
        {"name": "V2", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}},
    ]}
    p = pod()
    del p["spec"]["nodeName"]
    env, problems = env_of(p, container, pod_ip=None, node_name="fallback")
    assert env["NODE"] == "fallback"
    assert env["IP"] == ""
    assert "BAD" not in env and "ALL_LABELS" not in env
    assert len(problems) == 3
    assert problems[0] == "env 'BAD': fieldRef 'spec.containers' is not supported"
    assert "apiVersion 'v2'" in problems[2]


def resource_ref(resource, divisor=None, container_name=None):
    ref = {"resource": resource}
    if divisor is not None:
        ref["divisor"] = divisor
    if container_name:
        ref["containerName"] = container_name
    return {"valueFrom": {"resourceFieldRef": ref}}


def test_container_env_resource_field_refs_round_up_by_divisor():
    container = {"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "100Mi"},
                                            "requests": {"cpu": "100m", "memory": "64Mi"}},
                 "env": [{"name": "CPU", **resource_ref("limits.cpu")},
                         {"name": "CPU_M", **resource_ref("limits.cpu", "1m")},
                         {"name": "REQ_CPU_M", **resource_ref("requests.cpu", "1m")},
                         {"name": "MEM", **resource_ref("limits.memory")},
                         {"name": "MEM_MI", **resource_ref("limits.memory", "1Mi")},
                         {"name": "MEM_G", **resource_ref("limits.memory", "1G")},
                         {"name": "REQ_MEM_MI", **resource_ref("requests.memory", "1Mi")},
                         {"name": "EPH", **resource_ref("requests.ephemeral-storage")}]}
    env, problems = env_of(pod(containers=[container]), container)
    assert problems == []
    assert env["CPU"] == "1"  # 0.25 CPU, rounded up
    assert env["CPU_M"] == "250"
    assert env["REQ_CPU_M"] == "100"
    assert env["MEM"] == str(100 * 2**20)
    assert env["MEM_MI"] == "100"
    assert env["MEM_G"] == "1"
    assert env["REQ_MEM_MI"] == "64"
    assert env["EPH"] == "0"  # no request: zero, as the kubelet says


def test_container_env_resource_field_refs_default_to_allocatable_and_name_containers():
    other = {"name": "side", "resources": {"limits": {"memory": "32Mi"}}}
    container = {"name": "c", "env": [{"name": "CPU", **resource_ref("limits.cpu")},
                                      {"name": "SIDE_MEM", **resource_ref("limits.memory", "1Mi", "side")},
                                      {"name": "HUGE", **resource_ref("limits.hugepages-2Mi")},
                                      {"name": "NOBODY", **resource_ref("limits.cpu", None, "nobody")}]}
    p = pod(containers=[container, other])
    env, problems = env_of(p, container, allocatable={"cpu": "3500m", "memory": "8Gi"})
    assert env["CPU"] == "4"
    assert env["SIDE_MEM"] == "32"
    assert problems == ["env 'HUGE': resourceFieldRef 'limits.hugepages-2Mi' is not supported",
                        "env 'NOBODY': resourceFieldRef: no container named 'nobody'"]
    env, problems = env_of(p, {"name": "c", "env": [{"name": "CPU", **resource_ref("limits.cpu")}]})
    assert "CPU" not in env
    assert problems == ["env 'CPU': resourceFieldRef 'limits.cpu': no limit set and the node's allocatable is unknown"]
