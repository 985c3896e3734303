from nodeos.network.proxy import nftrules
from nodeos.network.proxy.model import Endpoint, ServicePort
from nodeos.network.proxy.nftrules import Context, render

CTX = Context(node="n1", pod_cidr="10.244.0.0/16")


def port(name="web", *, endpoints=("10.244.1.3",), nodes=("n1",), node_port=None, affinity=None, local=False,
         cluster_ip="10.96.0.10", protocol="TCP"):
    eps = tuple(Endpoint(ip, 8080, node, True) for ip, node in zip(endpoints, nodes * len(endpoints), strict=False))
    return ServicePort("default", name, "http", protocol, cluster_ip, 80, node_port, eps, affinity, local)


def test_cluster_ip_dispatches_to_a_service_chain_that_picks_endpoints_at_random():
    sp = port(endpoints=("10.244.1.3", "10.244.2.3", "10.244.3.3"))
    out = render(sp, CTX)
    svc = nftrules.service_chain(sp)
    assert out.elements == {("service-ips", "10.96.0.10 . tcp . 80", f"goto {svc}"),
                            ("hairpin", "10.244.1.3 . 10.244.1.3", ""), ("hairpin", "10.244.2.3 . 10.244.2.3", ""),
                            ("hairpin", "10.244.3.3 . 10.244.3.3", "")}
    assert out.chains == {svc: [
        "fib daddr type local meta mark set meta mark or 0x4000",
        "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 meta mark set meta mark or 0x4000",
        "meta l4proto tcp numgen random mod 3 0 dnat to 10.244.1.3:8080",  # 1/3
        "meta l4proto tcp numgen random mod 2 0 dnat to 10.244.2.3:8080",  # half of the other 2/3
        "meta l4proto tcp dnat to 10.244.3.3:8080"]}  # the rest
    assert not out.sets
    assert svc.startswith("service-") and svc.endswith("-default/web/tcp/http")


def test_no_endpoints_is_rejected_not_dispatched():
    out = render(port(endpoints=(), node_port=30080, protocol="UDP"), CTX)
    assert out.chains == {}
    assert out.elements == {("no-endpoint-services", "10.96.0.10 . udp . 80", "goto reject-chain"),
                            ("no-endpoint-nodeports", "udp . 30080", "goto reject-chain")}


def test_node_port_cluster_policy_goes_to_the_service_chain_which_masquerades_it():
    sp = port(node_port=30080)
    out = render(sp, CTX)
    svc = nftrules.service_chain(sp)
    assert ("service-nodeports", "tcp . 30080", f"goto {svc}") in out.elements
    assert out.chains[svc][0] == "fib daddr type local meta mark set meta mark or 0x4000"  # only node ports are local
    assert set(out.chains) == {svc}


def test_node_port_local_policy_only_local_endpoints_else_drop():
    sp = port(node_port=30080, local=True, endpoints=("10.244.1.3", "10.244.2.3"), nodes=("n1", "n2"))
    out = render(sp, CTX)
    ext, svc = nftrules.external_chain(sp), nftrules.service_chain(sp)
    assert ("service-nodeports", "tcp . 30080", f"goto {ext}") in out.elements
    assert out.chains[ext] == [f"ip saddr 10.244.0.0/16 goto {svc}", f"fib saddr type local goto {svc}",
                               "meta l4proto tcp dnat to 10.244.1.3:8080"]  # kept address, local endpoint only
    elsewhere = render(sp, Context(node="n3", pod_cidr=CTX.pod_cidr)).chains[ext]
    assert elsewhere[-1] == "drop"


def test_affinity_sets_per_endpoint_checked_first_and_refreshed_on_dnat():
    sp = port(affinity=30, endpoints=("10.244.1.3", "10.244.2.3"))
    out = render(sp, CTX)
    a, b = (nftrules.affinity_set(sp, ep) for ep in sp.endpoints)
    assert out.sets == {a: 30, b: 30}
    assert out.chains[nftrules.service_chain(sp)][2:] == [
        f"meta l4proto tcp ip saddr @{a} update @{a} {{ ip saddr }} dnat to 10.244.1.3:8080",
        f"meta l4proto tcp ip saddr @{b} update @{b} {{ ip saddr }} dnat to 10.244.2.3:8080",
        f"meta l4proto tcp numgen random mod 2 0 update @{a} {{ ip saddr }} dnat to 10.244.1.3:8080",
        f"meta l4proto tcp update @{b} {{ ip saddr }} dnat to 10.244.2.3:8080"]
    # a new timeout is a new set (a set's timeout is fixed)
    assert nftrules.affinity_set(port(affinity=60), sp.endpoints[0]) != a
    script = nftrules.update_script({}, {sp.key: out})
    assert f"add set ip nodeos {a} {{ type ipv4_addr; flags dynamic,timeout; timeout 30s; }}" in script


def test_update_touches_only_the_changed_port():
    before = port(endpoints=("10.244.1.3", "10.244.2.3"), affinity=30)
    after = port(endpoints=("10.244.1.3",), affinity=30)
    script = nftrules.update_script({before.key: render(before, CTX)}, {after.key: render(after, CTX)})
    lines = script.splitlines()
    svc = nftrules.service_chain(after)
    assert lines.index(f"flush chain ip nodeos {svc}") < lines.index(
        f"delete set ip nodeos {nftrules.affinity_set(before, before.endpoints[1])}")  # unreferenced by then
    assert "delete element ip nodeos hairpin { 10.244.2.3 . 10.244.2.3 }" in lines
    assert "service-ips" not in script  # same map entry: the verdict did not change
    assert all("default/web/" in line or "hairpin" in line for line in lines)  # nothing of any other Service


def test_update_keeps_shared_hairpin_entries():
    before, after = port(endpoints=("10.244.1.3",)), port(endpoints=())
    script = nftrules.update_script({before.key: render(before, CTX)}, {after.key: render(after, CTX)},
                                    shared={("hairpin", "10.244.1.3 . 10.244.1.3", "")})
    assert "hairpin" not in script


def test_update_moves_map_elements_when_endpoints_come_and_go():
    empty, full = port(endpoints=()), port()
    script = nftrules.update_script({empty.key: render(empty, CTX)}, {full.key: render(full, CTX)})
    assert "delete element ip nodeos no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }" in script
    assert (f"add element ip nodeos service-ips {{ 10.96.0.10 . tcp . 80 : goto {nftrules.service_chain(full)} }}"
            in script)
    removed = nftrules.update_script({full.key: render(full, CTX)}, {})
    assert "delete element ip nodeos service-ips" in removed and "add " not in removed
    assert f"delete chain ip nodeos {nftrules.service_chain(full)}" in removed
    assert nftrules.update_script({}, {}) == ""


def test_full_script_rewrites_everything_and_deletes_leftovers_but_keeps_affinity_state():
    sp = port(affinity=30)
    kept_set = nftrules.affinity_set(sp, sp.endpoints[0])
    script, rendered = nftrules.full_script(
        [sp], CTX, existing_chains={"services", "service-OLD-x", nftrules.service_chain(sp)},
        existing_sets={"affinity-OLD-x", "hairpin", kept_set})
    lines = script.splitlines()
    assert lines[0] == "add table ip nodeos"
    assert "flush map ip nodeos service-ips" in lines and "flush set ip nodeos hairpin" in lines
    assert "delete chain ip nodeos service-OLD-x" in lines and "delete set ip nodeos affinity-OLD-x" in lines
    assert f"flush set ip nodeos {kept_set}" not in lines  # clients keep their endpoint
    assert not any(line.startswith("delete") and line.endswith((kept_set, " hairpin", " services"))
                   for line in lines)
    assert set(rendered) == {sp.key}


def test_long_names_are_cut_and_stay_unique():
    a = port(name="x" * 63)
    b = ServicePort("y" * 63, "x" * 63, "z" * 15, "TCP", "10.96.0.10", 80, None, a.endpoints, 30, False)
    c = ServicePort("y" * 63, "x" * 63, "z" * 15, "UDP", "10.96.0.10", 80, None, a.endpoints, 30, False)
    names = {nftrules.affinity_set(b, b.endpoints[0]), nftrules.affinity_set(c, c.endpoints[0])}
    assert len(names) == 2 and all(len(n) <= 200 for n in names)


def test_stale_udp_flows_when_a_udp_port_loses_an_endpoint_gets_its_first_or_goes():
    from nodeos.network.proxy.nftables import stale_udp_flows

    two = port(endpoints=("10.244.1.3", "10.244.2.3"), protocol="UDP", node_port=30053)
    one = port(endpoints=("10.244.1.3",), protocol="UDP", node_port=30053)
    none = port(endpoints=(), protocol="UDP", node_port=30053)
    both = [("10.96.0.10", 80), (None, 30053)]
    assert stale_udp_flows(two, one) == both  # lost one
    assert stale_udp_flows(one, two) == []  # gained one: old flows still go somewhere alive
    assert stale_udp_flows(none, one) == both  # the first: flows that were refused or unknown
    assert stale_udp_flows(None, one) == both
    assert stale_udp_flows(one, None) == both
    assert stale_udp_flows(None, none) == []
    assert stale_udp_flows(port(endpoints=("10.244.1.3", "10.244.2.3")), port()) == []  # TCP: conntrack ends it
    moved = port(endpoints=("10.244.1.3",), nodes=("n2",), protocol="UDP", node_port=30053)
    assert stale_udp_flows(one, moved) == []  # the same endpoint, however described
