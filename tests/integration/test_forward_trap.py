"""The forward-drop trap on a real kernel: a "node" namespace whose forward hook drops (as Docker leaves
iptables' FORWARD), with two "pod" namespaces routed through it; the guard finds the chain, inserts its
accepts (once, and again after one is deleted), traffic flows, and the Node says so in a condition."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trio

from nodeos.config import default_config
from nodeos.network.forwarding import (
    COMMENT_PREFIX,
    CONDITION,
    NODES,
    check_and_remedy,
    node_condition,
    publish_condition,
    run_forward_guard,
)

DROP_TABLE = """
table ip filter {
  chain FORWARD { type filter hook forward priority 0; policy drop; }
}
"""

READY = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}


def sh(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True, input=input, timeout=30)


@dataclass
class Net:
    node: str  # the namespace that forwards, with the drop
    pod1: str
    pod2: str

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.node)

    def nft(self, *args: str, input: str | None = None) -> str:
        return sh(*self.prefix, "nft", *args, input=input).stdout

    def reaches(self) -> bool:
        """pod1 pings pod2 through the node namespace."""
        return sh("ip", "netns", "exec", self.pod1, "busybox", "ping", "-c", "1", "-W", "1", "10.244.2.2",
                  check=False).returncode == 0

    def our_rules(self) -> list[dict]:
        items = json.loads(self.nft("-j", "list", "chain", "ip", "filter", "FORWARD"))["nftables"]
        return [i["rule"] for i in items if "rule" in i and i["rule"].get("comment", "").startswith(COMMENT_PREFIX)]


@pytest.fixture
def net() -> Iterator[Net]:
    tag = uuid.uuid4().hex[:6]
    net = Net(f"nodeos-n6-{tag}-n", f"nodeos-n6-{tag}-a", f"nodeos-n6-{tag}-b")
    try:
        for ns in (net.node, net.pod1, net.pod2):
            sh("ip", "netns", "add", ns)
        for i, pod in ((1, net.pod1), (2, net.pod2)):
            host, peer = f"n6{tag}h{i}", f"n6{tag}p{i}"
            sh("ip", "-n", net.node, "link", "add", host, "type", "veth", "peer", "name", peer, "netns", pod)
            sh("ip", "-n", net.node, "addr", "add", f"10.244.{i}.1/24", "dev", host)
            sh("ip", "-n", net.node, "link", "set", host, "up")
            sh("ip", "-n", pod, "addr", "add", f"10.244.{i}.2/24", "dev", peer)
            sh("ip", "-n", pod, "link", "set", peer, "up")
            sh("ip", "-n", pod, "link", "set", "lo", "up")
            sh("ip", "-n", pod, "route", "add", "default", "via", f"10.244.{i}.1")
        sh(*net.prefix, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        assert net.reaches(), "the topology forwards before the drop is added"
        net.nft("-f", "-", input=DROP_TABLE)
        yield net
    finally:
        for ns in (net.node, net.pod1, net.pod2):
            sh("ip", "netns", "del", ns, check=False)


def test_the_drop_blocks_and_check_and_remedy_unblocks_once(net):
    cluster = default_config().cluster
    assert not net.reaches()
    report = check_and_remedy(cluster, net.prefix, remedy=False)
    assert [c.name for c in report.chains] == ["ip filter FORWARD"] and report.blocked

    report = check_and_remedy(cluster, net.prefix)
    assert list(report.inserted) == ["ip filter FORWARD"] and not report.blocked
    assert net.reaches()
    assert len(net.our_rules()) == 4

    again = check_and_remedy(cluster, net.prefix)
    assert again.inserted == {} and len(net.our_rules()) == 4  # not inserted twice


async def condition_of(api, name: str) -> dict:
    node = await api.get(NODES, name)
    return next(c for c in node["status"]["conditions"] if c["type"] == CONDITION)


async def test_the_guard_remedies_repairs_and_sets_the_node_condition(net, api, tmp_path, caplog):
    config = default_config(node={"name": "n6-trap", "role": "all", "data_dir": tmp_path})
    await api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n6-trap"}})
    await api.patch(NODES, "n6-trap", {"status": {"conditions": [READY]}}, "strategic", subresource="status")
    # Unremedied first (as on a host where the insert is refused): the condition says True.
    unremedied = await trio.to_thread.run_sync(lambda: check_and_remedy(config.cluster, net.prefix, remedy=False))
    await publish_condition(api, "n6-trap", node_condition(unremedied, config.cluster))
    blocked = await condition_of(api, "n6-trap")
    assert (blocked["status"], blocked["reason"]) == ("True", "ForwardDropped")
    assert "ip filter FORWARD" in blocked["message"]

    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_forward_guard(config, api, prefix=net.prefix, resync=0.3,
                                                                  task_status=task_status))
        assert "ip filter FORWARD" in caplog.text and "inserted 4 accept rules" in caplog.text
        assert await trio.to_thread.run_sync(net.reaches)
        condition = await condition_of(api, "n6-trap")
        assert (condition["status"], condition["reason"]) == ("False", "ClusterRangesAccepted")
        assert "ip filter FORWARD" in condition["message"]
        assert condition["lastTransitionTime"] >= blocked["lastTransitionTime"]
        node = await api.get(NODES, "n6-trap")
        assert sorted(c["type"] for c in node["status"]["conditions"]) == [CONDITION, "Ready"]  # merged by type

        handle = net.our_rules()[0]["handle"]
        net.nft("delete", "rule", "ip", "filter", "FORWARD", "handle", str(handle))
        assert len(net.our_rules()) == 3
        with trio.fail_after(10):
            while len(net.our_rules()) != 4:
                await trio.sleep(0.1)
        await trio.sleep(1)  # a few more resyncs: still exactly four
        assert len(net.our_rules()) == 4
        nursery.cancel_scope.cancel()


async def test_a_node_registered_after_the_guard_started_gets_the_condition_soon(net, api, tmp_path):
    config = default_config(node={"name": "n6-late", "role": "all", "data_dir": tmp_path})
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_forward_guard(config, api, prefix=net.prefix,
                                                                  task_status=task_status))  # resync: 30 s
        assert await trio.to_thread.run_sync(net.reaches)  # remedied before any Node exists
        await api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n6-late"}})
        with trio.fail_after(8):  # the retry for a missing Node, not the 30 s resync
            while not (await api.get(NODES, "n6-late")).get("status", {}).get("conditions"):
                await trio.sleep(0.2)
        assert (await condition_of(api, "n6-late"))["reason"] == "ClusterRangesAccepted"
        nursery.cancel_scope.cancel()


async def test_a_chain_that_refuses_the_accepts_is_reported_blocked(api, tmp_path, caplog):
    """A table flagged ``owner`` by another program refuses our inserts: the condition says True, the log why."""
    ns = f"nodeos-n6-{uuid.uuid4().hex[:6]}-o"
    sh("ip", "netns", "add", ns)
    owner = subprocess.Popen(["ip", "netns", "exec", ns, "nft", "-i"], stdin=subprocess.PIPE, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        owner.stdin.write("add table ip filter { flags owner; }\n"
                          "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }\n")
        owner.stdin.flush()
        prefix = ("ip", "netns", "exec", ns)
        with trio.fail_after(10):
            while "FORWARD" not in sh(*prefix, "nft", "list", "ruleset").stdout:
                await trio.sleep(0.05)
        config = default_config(node={"name": "n6-owned", "role": "all", "data_dir": tmp_path})
        await api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n6-owned"}})
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_forward_guard(config, api, prefix=prefix,
                                                                      task_status=task_status))
            condition = await condition_of(api, "n6-owned")
            nursery.cancel_scope.cancel()
        assert (condition["status"], condition["reason"]) == ("True", "ForwardDropped")
        assert "ip filter FORWARD" in condition["message"] and "Operation not permitted" in condition["message"]
        assert "could not accept the cluster ranges there" in caplog.text
        assert "fix: nft insert rule ip filter FORWARD" in caplog.text
    finally:
        owner.kill()
        owner.communicate()  # reaps it and closes its stdin
        sh("ip", "netns", "del", ns, check=False)
