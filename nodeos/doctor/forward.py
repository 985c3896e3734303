"""The forward-drop trap, as ``nodeos doctor`` reports it: which chain drops, and the exact fix.

The daemon's forward guard (``nodeos.network.forwarding``) inserts the same
accept rules itself at start; a fail here means they are not there now, so
pods on other nodes and Services are unreachable until the node starts or
someone runs the fix.
"""

from __future__ import annotations

from nodeos.config import Config
from nodeos.doctor import Check
from nodeos.network.forwarding import NftError, check_and_remedy, fix_commands, legacy_fix_commands

__all__ = ["check_forward"]

NAME = "forward path"


def check_forward(config: Config, *, root: bool) -> list[Check]:
    if not root:
        return [Check(NAME, "warn", "reading the nftables ruleset needs root: the forward-drop trap not checked",
                      ("run nodeos doctor as root",))]
    cluster = config.cluster
    try:
        report = check_and_remedy(cluster, remedy=False)
    except NftError as exc:
        return [Check(NAME, "warn", f"cannot read the nftables ruleset: {exc}")]
    checks = []
    ranges = f"{cluster.pod_cidr} and {cluster.service_cidr}"
    for chain in report.chains:
        if chain.missing(report.rules):
            checks.append(Check(f"{NAME}: {chain.name}", "fail",
                                f"drops forwarded traffic ({chain.how}): pods on other nodes and Services "
                                f"({ranges}) are unreachable (nodeos inserts these accepts when it starts)",
                                tuple(fix_commands(chain, report.rules))))
        else:
            checks.append(Check(f"{NAME}: {chain.name}", "ok", f"drops forwarded traffic ({chain.how}), "
                                                                 f"but nodeos' accepts for {ranges} are at its top"))
    if report.legacy:
        checks.append(Check(f"{NAME}: iptables-legacy FORWARD", "fail",
                            "policy DROP in iptables-legacy (which nodeos does not change): pods on other nodes "
                            "and Services are unreachable",
                            tuple(legacy_fix_commands(cluster))))
    return checks or [Check(NAME, "ok", "no forward hook drops by default")]
