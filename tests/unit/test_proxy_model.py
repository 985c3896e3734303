import functools

import pytest
import trio

from nodeos.client.testing import FakeApi
from nodeos.config import default_config
from nodeos.network.proxy.model import (
    ENDPOINTS,
    SERVICES,
    Changes,
    Endpoint,
    ServiceTracker,
    service_ports,
)


def service(name="web", ns="default", *, ports=None, cluster_ip="10.96.0.10", **spec):
    ports = ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": ports, **spec}}


def endpoints(name="web", ns="default", *subsets):
    return {"metadata": {"name": name, "namespace": ns}, "subsets": list(subsets)}


def subset(ips, ports=(("http", 8080),), not_ready=(), node="n1"):
    return {"addresses": [{"ip": ip, "nodeName": node} for ip in ips],
            "notReadyAddresses": [{"ip": ip, "nodeName": node} for ip in not_ready],
            "ports": [{"name": name, "port": port, "protocol": "TCP"} for name, port in ports]}


def test_cluster_ip_port_with_ready_endpoints_sorted():
    [port] = service_ports(service(), endpoints("web", "default", subset(["10.244.1.9", "10.244.1.3"],
                                                                          not_ready=["10.244.1.5"])))
    assert port.key == "default/web:http/TCP"
    assert (port.cluster_ip, port.port, port.node_port, port.affinity_seconds, port.local_only) == \
        ("10.96.0.10", 80, None, None, False)
    assert port.endpoints == (Endpoint("10.244.1.3", 8080, "n1", True), Endpoint("10.244.1.9", 8080, "n1", True))


def test_endpoints_matched_by_port_name_and_protocol():
    svc = service(ports=[{"name": "http", "port": 80, "protocol": "TCP"},
                         {"name": "dns", "port": 53, "protocol": "UDP"}])
    eps = endpoints("web", "default",
                    subset(["10.244.1.3"], ports=(("http", 8080),)),
                    {"addresses": [{"ip": "10.244.2.4", "nodeName": "n2"}],
                     "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"},
                               {"name": "http", "port": 9090, "protocol": "TCP"}]})
    http, dns = service_ports(svc, eps)
    assert [(e.ip, e.port) for e in http.endpoints] == [("10.244.1.3", 8080), ("10.244.2.4", 9090)]
    assert [(e.ip, e.port, e.node) for e in dns.endpoints] == [("10.244.2.4", 5353, "n2")]
    assert dns.key == "default/web:dns/UDP"


def test_unnamed_port_and_no_endpoints():
    [port] = service_ports(service(ports=[{"port": 53, "protocol": "UDP"}]), None)
    assert port.key == "default/web:/UDP" and port.endpoints == ()


def test_node_port_affinity_and_local_policy():
    svc = service(type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}],
                  sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}},
                  externalTrafficPolicy="Local")
    eps = endpoints("web", "default", subset(["10.244.1.3"], node="n1"), subset(["10.244.2.3"], node="n2"))
    [port] = service_ports(svc, eps)
    assert (port.node_port, port.affinity_seconds, port.local_only) == (30080, 30, True)
    assert [e.ip for e in port.local_endpoints("n2")] == ["10.244.2.3"]
    [default_timeout] = service_ports(service(sessionAffinity="ClientIP"), None)
    assert default_timeout.affinity_seconds == 10800


def test_headless_and_external_name():
    [headless] = service_ports(service(cluster_ip="None"), None)
    assert headless.cluster_ip is None
    assert service_ports({"metadata": {"name": "x", "namespace": "d"},
                          "spec": {"type": "ExternalName", "externalName": "example.org"}}, None) == []
    # a ClusterIP Service ignores a stray nodePort; externalTrafficPolicy only means something with node ports
    [port] = service_ports(service(externalTrafficPolicy="Local",
                                   ports=[{"name": "http", "port": 80, "nodePort": 30001}]), None)
    assert port.node_port is None and not port.local_only


def test_changes_is_a_set_with_a_full_flag():
    changes = Changes({"a"}, full=True)
    assert "a" in changes and changes.full and not Changes({"b"}).full


async def test_tracker_reports_only_real_changes_coalesced_and_full_resyncs(autojump_clock):
    fake = FakeApi()
    fake.put(SERVICES, service())
    fake.put(SERVICES, service("headless", cluster_ip="None"))
    fake.put(ENDPOINTS, endpoints("web", "default", subset(["10.244.1.3"])))
    async with fake.client() as api, trio.open_nursery() as nursery:
        tracker = ServiceTracker(api, resync_period=60)
        await nursery.start(tracker.run)
        first = await tracker.changes()
        assert first.full and set(first) == {"default/web:http/TCP"}  # headless: nothing to proxy
        assert [e.ip for e in tracker.snapshot()["default/web:http/TCP"].endpoints] == ["10.244.1.3"]

        start = trio.current_time()
        fake.put(ENDPOINTS, endpoints("web", "default", subset(["10.244.1.3", "10.244.1.4"])))
        fake.put(SERVICES, service("db", cluster_ip="10.96.0.11"))
        changed = await tracker.changes()
        assert set(changed) == {"default/web:http/TCP", "default/db:http/TCP"} and not changed.full
        assert trio.current_time() - start < 1

        fake.put(ENDPOINTS, endpoints("web", "default", subset(["10.244.1.3", "10.244.1.4"],
                                                              not_ready=["10.244.1.7"])))  # invisible
        fake.remove(SERVICES, "default", "db")
        assert set(await tracker.changes()) == {"default/db:http/TCP"}
        assert set(tracker.snapshot()) == {"default/web:http/TCP"}

        full = await tracker.changes()  # nothing else happens: the periodic full resync
        assert full.full and set(full) == {"default/web:http/TCP"}
        assert trio.current_time() - start >= 59
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("mode", ["nftables", "userspace"])
async def test_run_proxy_runs_the_configured_mode(monkeypatch, mode):
    from nodeos.network import proxy
    from nodeos.network.proxy import nftables, userspace

    ran = []

    async def fake(name, config, api, *, task_status):
        ran.append(name)
        task_status.started()

    monkeypatch.setattr(nftables, "run_nftables_proxy", functools.partial(fake, "nftables"))
    monkeypatch.setattr(userspace, "run_userspace_proxy", functools.partial(fake, "userspace"))
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(proxy.run_proxy, default_config(proxy={"mode": mode}), None))
    assert ran == [mode]
