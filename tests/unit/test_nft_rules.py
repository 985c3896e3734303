from nodeos.network.proxy import nftrules
from nodeos.network.proxy.model import Endpoint, ServicePort
from nodeos.network.proxy.nftrules import Context, render

CTX = Context(node="n1", pod_cidr="10.244.0.0/16")


def port(name="web", *, endpoints=("10.244.1.3",), nodes=("n1",), node_port=None, affinity=None, local=False,
         cluster_ip="10.96.0.10", protocol="TCP"):
    eps = tuple(Endpoint(ip, 8080, node, True) for ip, node in zip(endpoints, nodes * len(endpoints), strict=False))
    return ServicePort("default", name, "http", protocol, cluster_ip, 80, node_port, eps, affinity, local)


def test_cluster_ip_dispatches_to_a_service_chain_that_picks_endpoints_at_random():
    sp = port(endpoints=("10.244.1.3", "10.244.2.3"))
    out = render(sp, CTX)
    svc = nftrules.service_chain(sp)
    assert out.elements == {("service-ips", "10.96.0.10 . tcp . 80", f"goto {svc}")}
    ep1, ep2 = (nftrules.endpoint_chain(sp, ep) for ep in sp.endpoints)
    assert out.chains[svc] == [
        "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade",
        f"numgen random mod 2 vmap {{ 0 : goto {ep1}, 1 : goto {ep2} }}"]
    assert out.chains[ep1] == ["ip saddr 10.244.1.3 jump mark-for-masquerade",  # hairpin
                               "meta l4proto tcp dnat to 10.244.1.3:8080"]
    assert not out.sets
    assert svc.startswith("service-") and svc.endswith("-default/web/tcp/http")


def test_no_endpoints_is_rejected_not_dispatched():
    out = render(port(endpoints=(), node_port=30080, protocol="UDP"), CTX)
    assert out.chains == {}
    assert out.elements == {("no-endpoint-services", "10.96.0.10 . udp . 80", "goto reject-chain"),
                            ("no-endpoint-nodeports", "udp . 30080", "goto reject-chain")}


def test_node_port_cluster_policy_masquerades_then_goes_the_service_way():
    sp = port(node_port=30080)
    out = render(sp, CTX)
    ext = nftrules.external_chain(sp)
    assert ("service-nodeports", "tcp . 30080", f"goto {ext}") in out.elements
    assert out.chains[ext] == ["jump mark-for-masquerade", f"goto {nftrules.service_chain(sp)}"]


def test_node_port_local_policy_only_local_endpoints_else_drop():
    sp = port(node_port=30080, local=True, endpoints=("10.244.1.3", "10.244.2.3"), nodes=("n1", "n2"))
    rules = render(sp, CTX).chains[nftrules.external_chain(sp)]
    local = nftrules.endpoint_chain(sp, sp.endpoints[0])
    assert rules[-1] == f"numgen random mod 1 vmap {{ 0 : goto {local} }}"
    assert "jump mark-for-masquerade" not in rules  # the client's address is kept
    assert rules[0] == f"ip saddr 10.244.0.0/16 goto {nftrules.service_chain(sp)}"
    elsewhere = render(sp, Context(node="n3", pod_cidr=CTX.pod_cidr)).chains[nftrules.external_chain(sp)]
    assert elsewhere[-1] == "drop"


def test_affinity_sets_per_endpoint_checked_first_and_updated_on_dnat():
    sp = port(affinity=30, endpoints=("10.244.1.3", "10.244.2.3"))
    out = render(sp, CTX)
    sets = [nftrules.affinity_set(sp, ep) for ep in sp.endpoints]
    assert out.sets == dict.fromkeys(sets, 30)
    eps = [nftrules.endpoint_chain(sp, ep) for ep in sp.endpoints]
    checks = [f"ip saddr @{s} goto {e}" for s, e in zip(sets, eps, strict=True)]
    assert out.chains[nftrules.service_chain(sp)][1:3] == checks
    assert f"update @{sets[0]} {{ ip saddr }}" in out.chains[eps[0]]
    # a new timeout is a new set (a set's timeout is fixed)
    assert nftrules.affinity_set(port(affinity=60), sp.endpoints[0]) != sets[0]
    script = nftrules.update_script({}, {sp.key: out})
    assert f"add set ip nodeos {sets[0]} {{ type ipv4_addr; flags dynamic,timeout; timeout 30s; }}" in script


def test_update_touches_only_the_changed_port_and_removes_a_gone_endpoint():
    before = port(endpoints=("10.244.1.3", "10.244.2.3"))
    after = port(endpoints=("10.244.1.3",))
    script = nftrules.update_script({before.key: render(before, CTX)}, {after.key: render(after, CTX)})
    lines = script.splitlines()
    gone = nftrules.endpoint_chain(before, before.endpoints[1])
    kept = nftrules.endpoint_chain(before, before.endpoints[0])
    assert f"flush chain ip nodeos {gone}" in lines and f"delete chain ip nodeos {gone}" in lines
    assert lines.index(f"delete chain ip nodeos {gone}") > lines.index(
        f"flush chain ip nodeos {nftrules.service_chain(after)}")  # no longer referenced when deleted
    assert f"flush chain ip nodeos {kept}" in lines
    assert "element" not in script  # same map entry: the verdict did not change
    assert all("default/web/" in line for line in lines)  # nothing of any other Service


def test_update_moves_map_elements_when_endpoints_come_and_go():
    empty, full = port(endpoints=()), port()
    script = nftrules.update_script({empty.key: render(empty, CTX)}, {full.key: render(full, CTX)})
    assert "delete element ip nodeos no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }" in script
    assert (f"add element ip nodeos service-ips {{ 10.96.0.10 . tcp . 80 : goto {nftrules.service_chain(full)} }}"
            in script)
    removed = nftrules.update_script({full.key: render(full, CTX)}, {})
    assert "delete element ip nodeos service-ips" in removed and "add " not in removed
    assert nftrules.update_script({}, {}) == ""


def test_full_script_rewrites_everything_and_deletes_leftovers_but_keeps_affinity_state():
    sp = port(affinity=30)
    script, rendered = nftrules.full_script(
        [sp], CTX, existing_chains={"services", "service-OLD-x", nftrules.service_chain(sp)},
        existing_sets={"affinity-OLD-x", nftrules.affinity_set(sp, sp.endpoints[0])})
    lines = script.splitlines()
    assert lines[0] == "add table ip nodeos"
    assert "flush map ip nodeos service-ips" in lines
    assert "delete chain ip nodeos service-OLD-x" in lines and "delete set ip nodeos affinity-OLD-x" in lines
    assert not any(line.startswith("flush set") for line in lines)  # clients keep their endpoint
    assert f"delete set ip nodeos {nftrules.affinity_set(sp, sp.endpoints[0])}" not in lines
    assert "delete chain ip nodeos services" not in lines
    assert set(rendered) == {sp.key}


def test_long_names_are_cut_and_stay_unique():
    a = port(name="x" * 63, endpoints=("10.244.1.3",))
    b = ServicePort("y" * 63, "x" * 63, "z" * 15, "TCP", "10.96.0.10", 80, None, a.endpoints, None, False)
    names = {nftrules.endpoint_chain(a, a.endpoints[0]), nftrules.endpoint_chain(b, b.endpoints[0])}
    assert len(names) == 2 and all(len(n) <= 200 for n in names)
