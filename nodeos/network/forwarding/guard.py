"""The trap's guard: the check at start and on every resync, the WARNINGs, and the Node condition."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from nodeos.api import meta
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, ApiUnavailable
from nodeos.config import ClusterConfig, Config
from nodeos.errors import ApiError
from nodeos.network.forwarding.host import ForwardReport, NftError, check_and_remedy
from nodeos.network.forwarding.rules import COMMENT_PREFIX, fix_commands, legacy_fix_commands

__all__ = ["CONDITION", "NODES", "node_condition", "publish_condition", "run_forward_guard"]

log = logging.getLogger(__name__)

NODES = by_plural("", "v1", "nodes")
CONDITION = "ForwardingBlocked"
RESYNC_SECONDS = 30.0
NODE_RETRY_SECONDS = 2.0  # until the agent has registered the Node


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
        fix = "; ".join(legacy_fix_commands(cluster))
        lines.append("iptables-legacy FORWARD has policy DROP, which nodeos does not change: pods on other nodes "
                     f"and Services are unreachable; fix: {fix}")
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
    False only while the Node does not exist yet (the agent registers it soon)."""
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
        return True  # the API is in trouble: the next resync tries again, without a warning every 2 s
