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
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from nodeos.api import meta
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, ApiUnavailable
from nodeos.config import ClusterConfig, Config
from nodeos.errors import ApiError

__all__ = [
    "COMMENT_PREFIX",
    "CONDITION",
    "AcceptRule",
    "DroppingChain",
    "ForwardReport",
    "NftError",
    "accept_rules",
    "apply_script",
    "check_and_remedy",
    "dropping_chains",
    "fix_commands",
    "legacy_forward_drop",
    "node_condition",
    "publish_condition",
    "read_ruleset",
    "remedy_script",
    "run_forward_guard",
]

log = logging.getLogger(__name__)

NODES = by_plural("", "v1", "nodes")
COMMENT_PREFIX = "nodeos: "
CONDITION = "ForwardingBlocked"
RESYNC_SECONDS = 30.0
NODE_RETRY_SECONDS = 2.0  # until the agent has registered the Node
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


@dataclass
class ForwardReport:
    """What one check found and did: the dropping chains as they are after any remedy."""

    chains: list[DroppingChain]
    rules: tuple[AcceptRule, ...]
    inserted: dict[str, list[str]] = field(default_factory=dict)  # chain name -> comments inserted now
    errors: dict[str, str] = field(default_factory=dict)  # chain name -> why the remedy failed
    legacy: bool = False  # iptables-legacy's FORWARD has policy DROP, which nodeos leaves alone

    @property
    def unremedied(self) -> list[DroppingChain]:
        return [chain for chain in self.chains if chain.missing(self.rules)]

    @property
    def blocked(self) -> bool:
        return bool(self.unremedied) or self.legacy


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


# --- the boundary: the nft and iptables-legacy commands ---------------------------------------

class NftError(Exception):
    """``nft`` failed or is missing; the message is its own, on one line."""


def read_ruleset(prefix: Sequence[str] = ()) -> dict[str, Any]:
    """The current ruleset as ``nft -j list ruleset`` gives it (blocking).

    ``prefix`` runs the command under another, e.g. ``ip netns exec NS`` (how tests reach a
    namespace of their own); () runs it in the daemon's namespace.
    """
    return json.loads(_run([*prefix, "nft", "-j", "list", "ruleset"]) or "{}")


def apply_script(script: str, prefix: Sequence[str] = ()) -> None:
    """Apply an ``nft -f`` script as one transaction (blocking)."""
    _run([*prefix, "nft", "-f", "-"], script)


def _run(command: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(f"{shlex.join(command)}: {exc}") from None
    if done.returncode != 0:
        raise NftError(_first_error(done.stderr) or f"{shlex.join(command)} exited with {done.returncode}")
    return done.stdout


def _first_error(stderr: str) -> str:
    """nft's first complaint, without the script excerpt it repeats for every line of a transaction."""
    for line in stderr.splitlines():
        if "Error: " in line:
            return line.split("Error: ", 1)[1].strip()
    return " ".join(stderr.split())


def legacy_forward_drop(prefix: Sequence[str] = ()) -> bool:
    """Whether iptables-legacy's FORWARD chain has policy DROP (blocking).

    Only asked when the legacy filter table exists (``/proc/net/ip_tables_names``): listing it
    otherwise would load x_tables and create the table just to look.
    """
    if shutil.which("iptables-legacy") is None:
        return False
    try:
        names = _run([*prefix, "cat", "/proc/net/ip_tables_names"])
        return "filter" in names.split() and "-P FORWARD DROP" in _run(
            [*prefix, "iptables-legacy", "-S", "FORWARD"]).splitlines()
    except NftError:
        return False


def check_and_remedy(cluster: ClusterConfig, prefix: Sequence[str] = (), *, remedy: bool = True) -> ForwardReport:
    """Find dropping forward chains and, with ``remedy``, insert the missing accepts (blocking).

    Each chain gets its own transaction, so one chain that refuses (say, a table flagged ``owner``
    by another program) does not keep the others unremedied. The report describes the ruleset as
    read again after the inserts, so it says what is, not what was attempted.
    """
    rules = accept_rules(cluster)
    report = ForwardReport(dropping_chains(read_ruleset(prefix)), rules)
    if remedy and report.unremedied:
        for chain in report.unremedied:
            try:
                apply_script(remedy_script([chain], rules), prefix)
                report.inserted[chain.name] = [rule.comment for rule in chain.missing(rules)]
            except NftError as exc:
                report.errors[chain.name] = str(exc)
        report.chains = dropping_chains(read_ruleset(prefix))
    report.legacy = legacy_forward_drop(prefix)
    return report


# --- the Node condition ------------------------------------------------------------------------

def node_condition(report: ForwardReport, cluster: ClusterConfig) -> dict[str, str]:
    """The ``ForwardingBlocked`` condition (without times) that ``report`` calls for."""
    ranges = f"{cluster.pod_cidr} and {cluster.service_cidr}"
    if report.blocked:
        parts = [f"{c.name} drops forwarded traffic ({c.how})"
                 + (f" and refused the accepts: {report.errors[c.name]}" if c.name in report.errors else "")
                 for c in report.unremedied]
        if report.legacy:
            parts.append("iptables-legacy FORWARD has policy DROP (nodeos changes no legacy rules)")
        return {"type": CONDITION, "status": "True", "reason": "ForwardDropped",
                "message": "; ".join(parts) + f"; pods on other nodes and Services ({ranges}) are unreachable: "
                           "see `nodeos doctor` for the fix"}
    if report.chains:
        names = ", ".join(c.name for c in report.chains)
        return {"type": CONDITION, "status": "False", "reason": "ClusterRangesAccepted",
                "message": f"forward hook(s) {names} drop forwarded traffic by default; nodeos accepts {ranges} "
                           "at the top of each"}
    return {"type": CONDITION, "status": "False", "reason": "ForwardAccepted",
            "message": "no forward hook drops by default"}


async def publish_condition(api: ApiClient, node_name: str, wanted: dict[str, str]) -> bool:
    """Write the condition on the own Node when it differs from what is there; False if there is no Node yet.

    A strategic merge patch of ``status.conditions`` merges by ``type``, so the agent's conditions
    (Ready, the pressures) are kept, and the agent's own patches keep this one.
    """
    try:
        node = await api.get(NODES, node_name)
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise
    current = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == CONDITION), {})
    if all(current.get(key) == value for key, value in wanted.items()):
        return True
    now = meta.now()
    since = current.get("lastTransitionTime") if current.get("status") == wanted["status"] else None
    condition = {**wanted, "lastHeartbeatTime": now, "lastTransitionTime": since or now}
    await api.patch(NODES, node_name, {"status": {"conditions": [condition]}}, "strategic", subresource="status")
    return True


# --- the guard ---------------------------------------------------------------------------------

def _say(report: ForwardReport, cluster: ClusterConfig) -> list[str]:
    """The WARNING lines a report calls for: what drops, and what nodeos did about it."""
    lines = []
    for name, comments in report.inserted.items():
        if name not in report.errors:
            lines.append(f"forward hook {name} drops forwarded traffic by default, which cuts pods off from "
                         f"other nodes and Services: inserted {len(comments)} accept rules for "
                         f"{cluster.pod_cidr} and {cluster.service_cidr} at its top (comments '{COMMENT_PREFIX}...')")
    for chain in report.unremedied:
        error = report.errors.get(chain.name, "")
        fix = "; ".join(fix_commands(chain, report.rules))
        lines.append(f"forward hook {chain.name} drops forwarded traffic ({chain.how}) and nodeos could not "
                     f"accept the cluster ranges there{': ' + error if error else ''}; fix: {fix}")
    if report.legacy:
        lines.append("iptables-legacy FORWARD has policy DROP, which nodeos does not change: pods on other nodes "
                     f"are unreachable; fix: iptables-legacy -I FORWARD -s {cluster.pod_cidr} -j ACCEPT; "
                     f"iptables-legacy -I FORWARD -d {cluster.pod_cidr} -j ACCEPT")
    return lines


async def run_forward_guard(config: Config, api: ApiClient, *,
                            task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                            prefix: Sequence[str] = (), resync: float = RESYNC_SECONDS) -> None:
    """Check the forward hooks at start and every ``resync`` seconds; remedy, log and report each time.

    Started after the first check (remedied or not): a host's firewall is no reason to stop the
    node. Until the agent has registered the Node, the condition is retried every
    ``NODE_RETRY_SECONDS``. A warning is logged when what there is to say changes, and again
    whenever rules had to be inserted (someone removed them). ``prefix`` is for tests: see
    ``read_ruleset``. Nothing is undone on cancellation: the accepts stay for the pods that keep
    running.
    """
    cluster, node_name = config.cluster, config.node.name
    said: list[str] = []
    started = False
    while True:
        published = await _guard_once(cluster, node_name, api, prefix, said)
        if not started:
            started = True
            task_status.started()
        await trio.sleep(resync if published else min(resync, NODE_RETRY_SECONDS))


async def _guard_once(cluster: ClusterConfig, node_name: str, api: ApiClient, prefix: Sequence[str],
                      said: list[str]) -> bool:
    """One check: remedy, log what changed (``said`` holds the last lines), write the condition.
    True when there is nothing left to write (the condition is on the Node, or nft failed)."""
    try:
        report = await trio.to_thread.run_sync(check_and_remedy, cluster, prefix)
        lines = _say(report, cluster)
    except NftError as exc:
        report, lines = None, [f"forward guard: cannot read the nftables ruleset: {exc}"]
    for line in lines:
        if line not in said or (report is not None and report.inserted):
            log.warning("%s", line)
    said[:] = lines
    if report is None:
        return True
    try:
        return await publish_condition(api, node_name, node_condition(report, cluster))
    except (ApiError, ApiUnavailable) as exc:
        log.warning("forward guard: cannot write node %s's %s condition: %s", node_name, CONDITION, exc)
        return False
