"""The trap's pure part: which forward chains drop everything, and the accept rules that go into them.

Reads ``nft -j list ruleset`` output; writes ``nft -f`` text and shell commands. No I/O.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nodeos.config import ClusterConfig

__all__ = ["COMMENT_PREFIX", "AcceptRule", "DroppingChain", "accept_rules", "dropping_chains", "fix_commands",
           "legacy_fix_commands", "remedy_script"]

COMMENT_PREFIX = "nodeos: "
FAMILIES = ("ip", "inet", "bridge")  # those where an IPv4 packet meets the forward hook
# Statements that do not decide a packet's fate: a rule of only these and a drop drops everything.
_PASSIVE = {"counter", "log"}


@dataclass(frozen=True)
class AcceptRule:
    """One accept rule nodeos wants at the top of a dropping forward chain."""

    match: str  # nft match text, e.g. "ip saddr 10.244.0.0/16"
    comment: str  # starts with COMMENT_PREFIX; what identifies the rule

    def statement(self) -> str:
        return f'{self.match} accept comment "{self.comment}"'


@dataclass(frozen=True)
class DroppingChain:
    """A base chain on the forward hook that drops what no rule accepts."""

    family: str
    table: str
    chain: str
    how: str  # "policy drop", or "a final drop rule"
    comments: frozenset[str] = frozenset()  # the nodeos comments already on its rules

    @property
    def name(self) -> str:
        return f"{self.family} {self.table} {self.chain}"

    def missing(self, rules: Sequence[AcceptRule]) -> list[AcceptRule]:
        return [rule for rule in rules if rule.comment not in self.comments]


def accept_rules(cluster: ClusterConfig) -> tuple[AcceptRule, ...]:
    """Accepts for the pod and service ranges, each as source and as destination, in chain order."""
    rules = []
    for label, cidr in (("pod_cidr", cluster.pod_cidr), ("service_cidr", cluster.service_cidr)):
        for side, word in (("saddr", "from"), ("daddr", "to")):
            rules.append(AcceptRule(f"ip {side} {cidr}", f"{COMMENT_PREFIX}accept {word} {label} {cidr}"))
    return tuple(rules)


def dropping_chains(ruleset: dict[str, Any]) -> list[DroppingChain]:
    """The forward base chains of ``nft -j list ruleset`` output that drop by default."""
    items = ruleset.get("nftables") or []
    chains = [item["chain"] for item in items if "chain" in item]
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for item in items:
        if "rule" in item:
            rule = item["rule"]
            rules.setdefault((rule["family"], rule["table"], rule["chain"]), []).append(rule)
    found = []
    for chain in chains:
        if chain.get("hook") != "forward" or chain.get("family") not in FAMILIES:
            continue
        key = (chain["family"], chain["table"], chain["name"])
        own = rules.get(key, [])
        if chain.get("policy") == "drop":
            how = "policy drop"
        elif own and _drops_everything(own[-1]):
            how = "a final drop rule"
        else:
            continue
        comments = frozenset(r["comment"] for r in own if str(r.get("comment", "")).startswith(COMMENT_PREFIX))
        found.append(DroppingChain(*key, how, comments))
    return found


def _drops_everything(rule: dict[str, Any]) -> bool:
    """Whether a rule has no match: only counters or logs, then drop or reject."""
    statements = [next(iter(expr)) for expr in rule.get("expr") or []]
    return bool(statements) and statements[-1] in ("drop", "reject") and set(statements[:-1]) <= _PASSIVE


def remedy_script(chains: Sequence[DroppingChain], rules: Sequence[AcceptRule]) -> str:
    """An ``nft -f`` transaction inserting each chain's missing rules at its top, in ``rules`` order.

    ``insert`` without a position puts a rule first, so the rules are inserted last one first.
    """
    lines = []
    for chain in chains:
        missing = chain.missing(rules)
        for rule in reversed(missing):
            lines.append(f"insert rule {chain.family} {_quote(chain.table)} {_quote(chain.chain)} {rule.statement()}")
    return "".join(line + "\n" for line in lines)


def _quote(name: str) -> str:
    """A table or chain name as nft reads it: iptables' upper-case FORWARD is fine bare, odd names are quoted."""
    return name if name.replace("_", "").replace("-", "").isalnum() else f'"{name}"'


def fix_commands(chain: DroppingChain, rules: Sequence[AcceptRule]) -> list[str]:
    """Shell commands an operator can run to do the remedy by hand (for ``nodeos doctor``)."""
    return [shlex.join(["nft", "insert", "rule", chain.family, chain.table, chain.chain, *rule.match.split(),
                        "accept", "comment", f'"{rule.comment}"'])
            for rule in reversed(chain.missing(rules))]


def legacy_fix_commands(cluster: ClusterConfig) -> list[str]:
    """The same accepts for iptables-legacy, whose rules nodeos does not write."""
    return [f"iptables-legacy -I FORWARD {flag} {cidr} -j ACCEPT"
            for cidr in (cluster.service_cidr, cluster.pod_cidr) for flag in ("-d", "-s")]
