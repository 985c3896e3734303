"""The forward-drop trap: find forward hooks that drop by default, accept the cluster's ranges in them.

Design note. Docker sets iptables' FORWARD policy to DROP; with iptables-nft
that is a base chain ``FORWARD`` (hook forward, policy drop) in table ``ip
filter``. A firewall written for nftables may instead have ``inet filter
forward`` with policy drop, or end its chain with an unconditional ``drop``.
On such a host every packet nodeos routes — pod to pod across nodes over the
VXLAN device, pod to a Service backend after DNAT, and, with br_netfilter,
even pod to pod on the node's own bridge — dies silently in the forward hook.

Why the accept rules go into the dropping chain itself, not into a chain of
our own: in nftables each base chain on a hook is evaluated in turn, and
``accept`` ends only the chain that says it; the packet then meets the next
base chain at the same hook. ``drop`` is final everywhere. An accept in a
nodeos table therefore cannot save a packet that another table's chain
drops: the only place an accept counts is inside that chain, before its drop.

So, where it can (a table flagged ``owner`` or a kernel without permission
refuses), nodeos inserts at the top of each dropping chain accept rules for
the cluster's pod and service ranges, as source and as destination, each
commented ``nodeos: ...`` so an operator (and the next resync) recognises
them. Rules are matched by comment: not inserted twice, inserted again after
someone deletes one. nodeos never removes them: they belong to the host's
firewall from then on, and stopping nodeos must not cut running pods off.

The result is said loudly: a WARNING naming the table and chain, the Node
condition ``ForwardingBlocked`` on the own Node (True while a drop is left
unremedied, False with reason ``ClusterRangesAccepted`` once the accepts are
in), and ``nodeos doctor``.

Only IPv4 matters (the cluster ranges are IPv4): chains of family ``ip``,
``inet`` and ``bridge`` are looked at; ``ip6`` ones cannot drop IPv4 traffic.
iptables-legacy (x_tables) rules are invisible to ``nft``; ``legacy_forward_drop``
reports a legacy FORWARD DROP policy, which nodeos does not change.

Modules: ``rules`` (which chains drop, the accepts' text; pure), ``host``
(the ``nft`` and ``iptables-legacy`` commands, one check and remedy),
``guard`` (the daemon's ``forwarding`` component and the Node condition).
"""

from nodeos.network.forwarding.guard import (
    CONDITION,
    NODES,
    node_condition,
    publish_condition,
    run_forward_guard,
)
from nodeos.network.forwarding.host import (
    ForwardReport,
    NftError,
    apply_script,
    check_and_remedy,
    legacy_forward_drop,
    read_ruleset,
)
from nodeos.network.forwarding.rules import (
    COMMENT_PREFIX,
    AcceptRule,
    DroppingChain,
    accept_rules,
    dropping_chains,
    fix_commands,
    legacy_fix_commands,
    remedy_script,
)

__all__ = [
    "COMMENT_PREFIX",
    "CONDITION",
    "NODES",
    "AcceptRule",
    "DroppingChain",
    "ForwardReport",
    "NftError",
    "accept_rules",
    "apply_script",
    "check_and_remedy",
    "dropping_chains",
    "fix_commands",
    "legacy_fix_commands",
    "legacy_forward_drop",
    "node_condition",
    "publish_condition",
    "read_ruleset",
    "remedy_script",
    "run_forward_guard",
]
