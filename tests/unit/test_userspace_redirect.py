"""The userspace proxy's nft table text: redirects through maps, rejects for ports without endpoints."""

from __future__ import annotations

from nodeos.network.proxy.redirect import Redirect, changed_udp, ruleset, udp_destinations


def elements(script: str, name: str) -> str | None:
    prefix = f"add element ip nodeos-userspace {name} {{ "
    found = [line[len(prefix):-2] for line in script.splitlines() if line.startswith(prefix)]
    assert len(found) <= 1
    return found[0] if found else None


def test_cluster_ips_and_node_ports_map_to_their_listeners():
    script = ruleset([Redirect("tcp", "10.96.0.10", 80, 30080, 40001, 40002),
                      Redirect("udp", "10.96.0.10", 53, None, 40003, None)])
    assert elements(script, "cluster") == "10.96.0.10 . tcp . 80 : 40001, 10.96.0.10 . udp . 53 : 40003"
    assert elements(script, "nodeports") == "tcp . 30080 : 40002"
    assert elements(script, "cluster-reject") is None
    assert elements(script, "nodeport-reject") is None
    assert elements(script, "listeners") == "tcp . 40001, tcp . 40002, udp . 40003"


def test_ports_without_endpoints_are_rejected_not_redirected():
    script = ruleset([Redirect("tcp", "10.96.0.11", 80, 30081, None, None),
                      Redirect("tcp", "10.96.0.12", 80, 30082, 40001, None)])  # a Local node port, none here
    assert elements(script, "cluster") == "10.96.0.12 . tcp . 80 : 40001"
    assert elements(script, "cluster-reject") == "10.96.0.11 . tcp . 80"
    assert elements(script, "nodeport-reject") == "tcp . 30081, tcp . 30082"
    assert elements(script, "nodeports") is None


def test_every_object_is_declared_then_flushed_so_a_rewrite_repairs_drift():
    script = ruleset([])
    lines = script.splitlines()
    assert lines[0] == "add table ip nodeos-userspace"
    for kind, name in [("map", "cluster"), ("map", "nodeports"), ("set", "cluster-reject"),
                       ("set", "nodeport-reject"), ("set", "listeners"), ("chain", "nat-prerouting"),
                       ("chain", "nat-output"), ("chain", "filter-forward"), ("chain", "filter-output"),
                       ("chain", "filter-input")]:
        declared = next(i for i, line in enumerate(lines) if line.startswith(f"add {kind} ip nodeos-userspace {name} "))
        assert lines[declared + 1] == f"flush {kind} ip nodeos-userspace {name}"
    assert not any(line.startswith("delete") for line in lines)  # base chains keep their hooks


def test_the_rules_do_not_depend_on_the_services():
    rules = [line for line in ruleset([Redirect("tcp", "10.96.0.10", 80, 30080, 40001, 40001)]).splitlines()
             if line.startswith("add rule")]
    assert rules == [line for line in ruleset([]).splitlines() if line.startswith("add rule")]
    assert sum("redirect to" in rule for rule in rules) == 4  # cluster IPs and node ports, prerouting and output
    assert sum("reject with tcp reset" in rule for rule in rules) == 5
    assert sum("@listeners ct status & dnat != dnat" in rule for rule in rules) == 2  # not reached directly


def test_udp_flows_are_forgotten_where_the_redirect_changed():
    before = udp_destinations([Redirect("udp", "10.96.0.10", 53, 30053, 40001, 40001),
                               Redirect("udp", "10.96.0.11", 53, None, 40002, None),
                               Redirect("tcp", "10.96.0.12", 80, None, 40003, None)])
    assert before == {("10.96.0.10", 53): 40001, (None, 30053): 40001, ("10.96.0.11", 53): 40002}
    after = udp_destinations([Redirect("udp", "10.96.0.10", 53, 30053, 40001, 40001),  # unchanged
                              Redirect("udp", "10.96.0.11", 53, None, None, None),  # now rejected
                              Redirect("udp", "10.96.0.13", 53, None, 40004, None)])  # new
    assert changed_udp(before, after) == [("10.96.0.11", 53), ("10.96.0.13", 53)]
    assert changed_udp(after, {}) == sorted(after, key=str)  # Services gone
    assert changed_udp(None, after) == sorted(after, key=str)  # at start: the old listeners are gone
    assert changed_udp(after, after) == []
