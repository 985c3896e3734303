"""The overlay's desired state and diff (nodeos.network.overlay.peers), and its pure helpers."""

from __future__ import annotations

import ipaddress

from nodeos.config import NetworkConfig
from nodeos.network.overlay import overlay_mtu
from nodeos.network.overlay.masquerade import masquerade_rules
from nodeos.network.overlay.peers import (
    VTEP_MAC_ANNOTATION,
    Entries,
    Fdb,
    Neighbour,
    Route,
    desired_entries,
    peer_of,
    peers,
    plan,
)

IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network


def node(name: str, cidr: str | None = "10.244.2.0/24", address: str | None = "192.168.50.3",
         mac: str | None = "AA:BB:CC:00:00:02") -> dict:
    return {"metadata": {"name": name, "annotations": {VTEP_MAC_ANNOTATION: mac} if mac else {}},
            "spec": {"podCIDR": cidr} if cidr else {},
            "status": {"addresses": ([{"type": "Hostname", "address": name}]
                                     + ([{"type": "InternalIP", "address": address}] if address else []))}}


def test_a_complete_node_is_a_peer_with_its_network_address_as_vtep():
    peer = peer_of(node("b"))
    assert peer is not None
    assert (peer.node, peer.pod_cidr, peer.underlay, peer.mac) == ("b", NET("10.244.2.0/24"), IP("192.168.50.3"),
                                                                  "aa:bb:cc:00:00:02")
    assert peer.vtep == IP("10.244.2.0")


def test_incomplete_or_malformed_nodes_are_not_peers():
    assert peer_of(node("b", cidr=None)) is None
    assert peer_of(node("b", address=None)) is None
    assert peer_of(node("b", mac=None)) is None
    assert peer_of(node("b", mac="not-a-mac")) is None
    assert peer_of(node("b", cidr="10.244.2.0/33")) is None


def test_peers_leave_out_this_node():
    nodes = [node("a", "10.244.1.0/24", "192.168.50.2", "aa:bb:cc:00:00:01"), node("b"), node("c", cidr=None)]
    assert [p.node for p in peers(nodes, "a")] == ["b"]


def test_each_peer_wants_a_neighbour_an_fdb_entry_and_a_route():
    entries = desired_entries(peers([node("b")], "a"))
    assert entries == Entries(neighbours=frozenset({Neighbour(IP("10.244.2.0"), "aa:bb:cc:00:00:02")}),
                              fdb=frozenset({Fdb("aa:bb:cc:00:00:02", IP("192.168.50.3"))}),
                              routes=frozenset({Route(NET("10.244.2.0/24"), IP("10.244.2.0"))}))


def test_plan_adds_what_is_missing_and_nothing_when_in_step():
    desired = desired_entries(peers([node("b")], "a"))
    first = plan(desired, Entries())
    assert first.add_neighbours and first.add_fdb and first.add_routes
    assert not (first.remove_routes or first.remove_fdb or first.remove_neighbours)
    assert not plan(desired, desired)


def test_plan_removes_a_vanished_node_completely():
    had = desired_entries(peers([node("b"), node("c", "10.244.3.0/24", "192.168.50.4", "aa:bb:cc:00:00:03")], "a"))
    changes = plan(desired_entries(peers([node("b")], "a")), had)
    assert changes.remove_routes == [Route(NET("10.244.3.0/24"), IP("10.244.3.0"))]
    assert changes.remove_fdb == [Fdb("aa:bb:cc:00:00:03", IP("192.168.50.4"))]
    assert changes.remove_neighbours == [Neighbour(IP("10.244.3.0"), "aa:bb:cc:00:00:03")]
    assert not (changes.add_neighbours or changes.add_fdb or changes.add_routes)


def test_a_new_mac_replaces_neighbour_and_fdb_but_keeps_the_route():
    had = desired_entries(peers([node("b")], "a"))
    changes = plan(desired_entries(peers([node("b", mac="aa:bb:cc:00:00:99")], "a")), had)
    assert [n.mac for n in changes.remove_neighbours] == ["aa:bb:cc:00:00:02"]
    assert [n.mac for n in changes.add_neighbours] == ["aa:bb:cc:00:00:99"]
    assert [f.mac for f in changes.add_fdb] == ["aa:bb:cc:00:00:99"]
    assert not changes.remove_routes and not changes.add_routes


def test_a_moved_node_gets_a_new_fdb_destination():
    had = desired_entries(peers([node("b")], "a"))
    changes = plan(desired_entries(peers([node("b", address="192.168.50.9")], "a")), had)
    assert changes.remove_fdb == [Fdb("aa:bb:cc:00:00:02", IP("192.168.50.3"))]
    assert changes.add_fdb == [Fdb("aa:bb:cc:00:00:02", IP("192.168.50.9"))]
    assert not changes.add_neighbours and not changes.add_routes


def test_mtu_is_the_underlays_minus_vxlan_unless_configured():
    assert overlay_mtu(NetworkConfig(), 1500) == 1450
    assert overlay_mtu(NetworkConfig(), 9000) == 8950
    assert overlay_mtu(NetworkConfig(mtu=1400), 1500) == 1400


def test_masquerade_rules_in_the_order_they_must_apply():
    script = masquerade_rules(NET("10.244.0.0/16"), IP("10.244.1.0"), "nodeos.1")
    lines = [line.strip() for line in script.splitlines()]
    assert lines[:2] == ["table ip nodeos-overlay", "flush table ip nodeos-overlay"]  # one atomic rewrite
    assert "priority srcnat - 10" in script  # before netavark's chain at srcnat

    def index(fragment: str) -> int:
        return next(i for i, line in enumerate(lines) if fragment in line)

    into = index('oifname "nodeos.1" ip saddr != 10.244.0.0/16 snat ip to 10.244.1.0')
    marked_into = index('oifname "nodeos.1" meta mark & 0x4000 != 0 snat ip to 10.244.1.0')
    marked = index("meta mark & 0x4000 != 0 return")
    keep = index("ip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 snat ip to ip saddr")
    masquerade = index("ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade")
    assert into < marked_into < marked < keep < masquerade


def test_only_changes_the_overlay_acts_on_start_a_pass():
    from nodeos.network.overlay.run import _overlay_view

    old = node("b")
    heartbeat = {**old, "status": {**old["status"], "conditions": [{"type": "Ready", "status": "True"}]}}
    assert _overlay_view(heartbeat) == _overlay_view(old)
    assert _overlay_view(node("b", mac="aa:bb:cc:00:00:99")) != _overlay_view(old)
    assert _overlay_view(node("b", address="192.168.50.9")) != _overlay_view(old)
    assert _overlay_view(node("b", cidr="10.244.9.0/24")) != _overlay_view(old)


def test_no_overlay_no_mtu_for_the_pod_network():
    from nodeos.config import default_config
    from nodeos.network.overlay import pod_network_mtu

    assert pod_network_mtu(default_config(network={"backend": "none"}), "192.168.50.2") is None
    assert pod_network_mtu(default_config(node={"disable": ["overlay"]}), "192.168.50.2") is None
    assert pod_network_mtu(default_config(network={"mtu": 1400}), "192.168.50.2") == 1400
    assert pod_network_mtu(default_config(), "127.0.0.1") is None  # no underlay: Podman's default
