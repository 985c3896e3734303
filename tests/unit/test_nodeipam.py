"""Node IPAM: podCIDRs carved from pod_cidr, rebuilt from the Nodes at start, released on delete."""

from __future__ import annotations

import ipaddress

import pytest
import trio

from nodeos.api.kinds import by_plural
from nodeos.config import default_config
from nodeos.controllers import nodeipam
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.controllers.nodeipam import CidrSet, NodeIpamController

NODES = by_plural("", "v1", "nodes")


async def eventually(check, timeout: float = 5.0):
    with trio.fail_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.02)
        return result


async def cidr_of(api, name: str) -> str | None:
    return (await api.get(NODES, name)).get("spec", {}).get("podCIDR")


def controller(api, pod_cidr: str = "10.244.0.0/16", size: int = 24) -> NodeIpamController:
    return NodeIpamController(api, EventRecorder(api, "node-ipam-controller"), ipaddress.IPv4Network(pod_cidr), size)


def test_cidr_set_allocates_in_order_skips_used_and_knows_its_subnets():
    cidrs = CidrSet(ipaddress.IPv4Network("10.244.0.0/22"), 24)
    assert cidrs.count == 4
    cidrs.occupy(cidrs.index("10.244.1.0/24"))
    assert [cidrs.cidr(cidrs.allocate()) for _ in range(3)] == ["10.244.0.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    assert cidrs.allocate() is None
    cidrs.release(0)
    assert cidrs.allocate() == 0
    assert cidrs.index("10.244.1.0/25") is None  # not one of ours: another size
    assert cidrs.index("10.245.0.0/24") is None  # outside the range
    assert cidrs.index("not a cidr") is None
    with pytest.raises(ValueError):
        CidrSet(ipaddress.IPv4Network("10.244.0.0/16"), 8)


def test_cidr_set_does_not_hand_out_a_released_cidr_at_once():
    cidrs = CidrSet(ipaddress.IPv4Network("10.0.0.0/16"), 24)
    first, second = cidrs.allocate(), cidrs.allocate()
    cidrs.release(first)
    assert cidrs.allocate() not in (first, second)


async def test_nodes_get_distinct_cidrs_around_existing_ones(api):
    await api.create(NODES, {"metadata": {"name": "pre"}, "spec": {"podCIDR": "10.244.0.0/24"}})
    async with trio.open_nursery() as nursery:
        await nursery.start(controller(api).run)
        for name in ("a", "b"):
            await api.create(NODES, {"metadata": {"name": name}})
        a = await eventually(lambda: cidr_of(api, "a"))
        b = await eventually(lambda: cidr_of(api, "b"))
        nursery.cancel_scope.cancel()
    assert {a, b} == {"10.244.1.0/24", "10.244.2.0/24"}
    node = await api.get(NODES, "a")
    assert node["spec"]["podCIDRs"] == [node["spec"]["podCIDR"]]


async def test_restart_rebuilds_from_nodes_and_delete_releases(api):
    async with trio.open_nursery() as nursery:
        await nursery.start(controller(api, "10.244.0.0/23").run)
        await api.create(NODES, {"metadata": {"name": "one"}})
        await api.create(NODES, {"metadata": {"name": "two"}})
        one = await eventually(lambda: cidr_of(api, "one"))
        two = await eventually(lambda: cidr_of(api, "two"))
        nursery.cancel_scope.cancel()
    assert {one, two} == {"10.244.0.0/24", "10.244.1.0/24"}

    async with trio.open_nursery() as nursery:
        # a new controller knows both are taken: the range is full for a third node
        await nursery.start(controller(api, "10.244.0.0/23").run)
        await api.create(NODES, {"metadata": {"name": "three"}})

        async def full_event():
            events = (await api.list(EVENTS, "default", field_selector="involvedObject.name=three"))["items"]
            return [e for e in events if e["reason"] == "CIDRNotAvailable"]

        [event] = await eventually(full_event)
        assert event["type"] == "Warning" and event["message"] == "Node three status is now: CIDRNotAvailable"
        assert await cidr_of(api, "three") is None
        await api.patch(NODES, "three", {"metadata": {"labels": {"looked": "again"}}})  # reconciled again
        await trio.sleep(0.2)
        [event] = await full_event()
        assert event["count"] == 1  # said once: thousands of waiting nodes must not flood the API
        await api.delete(NODES, "one")  # frees its CIDR for the waiting node
        assert await eventually(lambda: cidr_of(api, "three")) == one
        nursery.cancel_scope.cancel()


async def test_build_reads_the_cluster_config(api):
    config = default_config(cluster={"pod_cidr": "10.100.0.0/16", "node_cidr_size": 26})
    built = nodeipam.build(api, EventRecorder(api, "test"), config)
    assert built.cidrs.cidr(1) == "10.100.0.64/26"
