"""The forward-drop trap's pure parts: reading ``nft -j list ruleset``, the remedy's rule text, the condition."""

from __future__ import annotations

import shlex

from nodeos.config import default_config
from nodeos.network.forwarding import (
    COMMENT_PREFIX,
    CONDITION,
    DroppingChain,
    ForwardReport,
    accept_rules,
    dropping_chains,
    fix_commands,
    legacy_fix_commands,
    node_condition,
    remedy_script,
)

CLUSTER = default_config(cluster={"pod_cidr": "10.244.0.0/16", "service_cidr": "10.96.0.0/16"}).cluster
RULES = accept_rules(CLUSTER)


def chain(family: str, table: str, name: str, *, hook: str | None = "forward", policy: str = "accept") -> dict:
    body = {"family": family, "table": table, "name": name, "handle": 1}
    if hook:
        body |= {"type": "filter", "hook": hook, "prio": 0, "policy": policy}
    return {"chain": body}


def rule(family: str, table: str, name: str, *expr: dict, comment: str | None = None) -> dict:
    body = {"family": family, "table": table, "chain": name, "handle": 2, "expr": list(expr)}
    if comment:
        body["comment"] = comment
    return {"rule": body}


COUNTER = {"counter": {"packets": 0, "bytes": 0}}
DROP = {"drop": None}
MATCH_SADDR = {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                         "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}


def ruleset(*items: dict) -> dict:
    return {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, *items]}


def test_a_forward_chain_with_policy_drop_is_found():
    found = dropping_chains(ruleset(chain("ip", "filter", "FORWARD", policy="drop")))
    assert found == [DroppingChain("ip", "filter", "FORWARD", "policy drop")]
    assert found[0].name == "ip filter FORWARD"


def test_accepting_chains_other_hooks_ip6_and_regular_chains_are_not():
    assert dropping_chains(ruleset(
        chain("ip", "filter", "FORWARD"),
        chain("ip", "filter", "INPUT", hook="input", policy="drop"),
        chain("ip6", "filter", "FORWARD", policy="drop"),  # cannot drop IPv4 traffic
        chain("ip", "filter", "DOCKER", hook=None),
    )) == []


def test_a_final_unconditional_drop_rule_is_found_a_conditional_one_is_not():
    found = dropping_chains(ruleset(
        chain("inet", "fw", "forward"), rule("inet", "fw", "forward", COUNTER, DROP),
        chain("inet", "fw2", "forward"), rule("inet", "fw2", "forward", MATCH_SADDR, DROP),
        chain("bridge", "br", "forward"), rule("bridge", "br", "forward", {"reject": None}),
    ))
    assert [(c.name, c.how) for c in found] == [("inet fw forward", "a final drop rule"),
                                                ("bridge br forward", "a final drop rule")]


def test_a_drop_followed_by_other_rules_is_not_final():
    found = dropping_chains(ruleset(chain("inet", "fw", "forward"), rule("inet", "fw", "forward", DROP),
                                    rule("inet", "fw", "forward", MATCH_SADDR, {"accept": None})))
    assert found == []


def test_only_nodeos_comments_are_collected():
    ours = RULES[0]
    found = dropping_chains(ruleset(
        chain("ip", "filter", "FORWARD", policy="drop"),
        rule("ip", "filter", "FORWARD", MATCH_SADDR, {"accept": None}, comment=ours.comment),
        rule("ip", "filter", "FORWARD", MATCH_SADDR, {"accept": None}, comment="docker: something"),
    ))
    assert found[0].comments == {ours.comment}
    assert found[0].missing(RULES) == list(RULES[1:])


def test_accept_rules_cover_both_ranges_as_source_and_destination():
    assert [r.match for r in RULES] == ["ip saddr 10.244.0.0/16", "ip daddr 10.244.0.0/16",
                                       "ip saddr 10.96.0.0/16", "ip daddr 10.96.0.0/16"]
    assert all(r.comment.startswith(COMMENT_PREFIX) for r in RULES)
    assert len({r.comment for r in RULES}) == 4  # the comment identifies the rule
    assert RULES[0].statement() == 'ip saddr 10.244.0.0/16 accept comment "nodeos: accept from pod_cidr 10.244.0.0/16"'


def test_the_remedy_inserts_only_missing_rules_last_first_so_they_end_up_in_order():
    full = DroppingChain("ip", "filter", "FORWARD", "policy drop")
    partial = DroppingChain("inet", "fw", "forward", "a final drop rule", frozenset({RULES[0].comment}))
    done = DroppingChain("inet", "done", "forward", "policy drop", frozenset(r.comment for r in RULES))
    lines = remedy_script([full, partial, done], RULES).splitlines()
    assert lines[:4] == [f"insert rule ip filter FORWARD {r.statement()}" for r in reversed(RULES)]
    assert lines[4:] == [f"insert rule inet fw forward {r.statement()}" for r in reversed(RULES[1:])]


def test_odd_names_are_quoted_in_the_script():
    odd = DroppingChain("inet", "my table", "fwd.chain", "policy drop")
    assert remedy_script([odd], RULES[:1]).startswith('insert rule inet "my table" "fwd.chain" ip saddr')


def test_fix_commands_are_shell_commands_nft_reads_back():
    commands = fix_commands(DroppingChain("ip", "filter", "FORWARD", "policy drop"), RULES)
    assert len(commands) == 4
    words = shlex.split(commands[-1])
    assert words[:6] == ["nft", "insert", "rule", "ip", "filter", "FORWARD"]
    assert words[6:] == ["ip", "saddr", "10.244.0.0/16", "accept", "comment", f'"{RULES[0].comment}"']


def test_condition_false_when_nothing_drops():
    condition = node_condition(ForwardReport([], RULES), CLUSTER)
    assert (condition["type"], condition["status"], condition["reason"]) == (CONDITION, "False", "ForwardAccepted")


def test_condition_false_when_every_drop_is_remedied():
    remedied = DroppingChain("ip", "filter", "FORWARD", "policy drop", frozenset(r.comment for r in RULES))
    condition = node_condition(ForwardReport([remedied], RULES), CLUSTER)
    assert (condition["status"], condition["reason"]) == ("False", "ClusterRangesAccepted")
    assert "ip filter FORWARD" in condition["message"]


def test_condition_true_naming_the_chain_and_the_error_when_a_drop_is_left():
    left = DroppingChain("inet", "fw", "forward", "policy drop")
    report = ForwardReport([left], RULES, errors={left.name: "Operation not permitted"})
    condition = node_condition(report, CLUSTER)
    assert (condition["status"], condition["reason"]) == ("True", "ForwardDropped")
    assert "inet fw forward" in condition["message"] and "Operation not permitted" in condition["message"]


def test_a_legacy_drop_blocks_too():
    report = ForwardReport([], RULES, legacy=True)
    assert report.blocked
    assert "iptables-legacy" in node_condition(report, CLUSTER)["message"]


def test_legacy_fixes_accept_both_ranges_both_ways():
    assert legacy_fix_commands(CLUSTER) == [f"iptables-legacy -I FORWARD {flag} {cidr} -j ACCEPT"
                                           for cidr in ("10.96.0.0/16", "10.244.0.0/16") for flag in ("-d", "-s")]
