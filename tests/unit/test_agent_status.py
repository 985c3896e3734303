"""The agent's pure parts: pod addresses, pod status, node conditions."""

from __future__ import annotations

import datetime as dt

import pytest

from nodeos.agent.node_status import conditions_need_update, node_conditions
from nodeos.agent.pod_status import pod_status, status_differs
from nodeos.agent.podips import PodIPs
from nodeos.agent.runtime.base import ContainerState, PodState
from nodeos.agent.simulated import simulated_address


def test_pod_ips_skip_network_and_gateway_and_are_reused_late():
    ips = PodIPs("10.244.1.0/30")  # .0 network, .1 gateway, .2 the only pod address, .3 broadcast
    assert ips.allocate("a") == "10.244.1.2"
    assert ips.allocate("a") == "10.244.1.2"  # idempotent per key
    assert ips.allocate("b") is None  # full
    ips.release("a")
    assert ips.allocate("b") == "10.244.1.2"


def test_pod_ips_round_robin_and_keep_a_preferred_address():
    ips = PodIPs("10.244.1.0/24")
    assert [ips.allocate(k) for k in "abc"] == ["10.244.1.2", "10.244.1.3", "10.244.1.4"]
    ips.release("a")
    assert ips.allocate("d") == "10.244.1.5"  # a released address is not handed out again at once
    assert ips.allocate("e", preferred="10.244.1.77") == "10.244.1.77"  # a restarted agent keeps its pods' IPs
    assert ips.allocate("f", preferred="10.244.1.77") == "10.244.1.6"  # taken: the next free one
    assert ips.allocate("g", preferred="10.9.9.9") == "10.244.1.7"  # not ours
    assert ips.allocate("h", preferred="10.244.1.1") == "10.244.1.8"  # the gateway is never a pod's


def running_state() -> PodState:
    containers = (ContainerState("web", "nginx", started_at="2026-01-01T00:00:00Z", image_id="simulated://nginx",
                                 container_id="simulated://1"),)
    return PodState("Running", "2026-01-01T00:00:00Z", containers)


def test_pod_status_is_stable_once_written():
    pod = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending", "qosClass": "BestEffort"}}
    status = pod_status(pod, running_state(), host_ip="192.0.2.1", pod_ip="10.244.1.2")
    assert status_differs(pod, status)
    written = {**pod, "status": {**pod["status"], **{k: v for k, v in status.items() if v is not None}}}
    again = pod_status(written, running_state(), host_ip="192.0.2.1", pod_ip="10.244.1.2")
    assert not status_differs(written, again)  # a resync writes nothing
    assert again["conditions"] == status["conditions"]  # transition times kept


def test_pod_status_of_a_failed_pod():
    failed = PodState("Failed", "2026-01-01T00:00:00Z",
                      (ContainerState("web", "x", state="terminated", ready=False, exit_code=1, reason="Error"),),
                      reason="Error", message="it failed")
    status = pod_status({"metadata": {}, "spec": {}}, failed, host_ip="192.0.2.1", pod_ip=None)
    assert status["phase"] == "Failed" and status["podIP"] is None
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodFailed")
    assert status["containerStatuses"][0]["state"] == {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert status["containerStatuses"][0]["started"] is False


NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_node_conditions_need_writing_when_not_healthy_or_stale():
    fresh = node_conditions([], "2026-01-01T12:00:00Z")
    assert {c["type"]: c["status"] for c in fresh} == {
        "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    assert not conditions_need_update(fresh, NOW + dt.timedelta(seconds=59), 60)
    assert conditions_need_update(fresh, NOW + dt.timedelta(seconds=60), 60)
    unknown = [{**c, "status": "Unknown"} if c["type"] == "Ready" else c for c in fresh]
    assert conditions_need_update(unknown, NOW, 60)
    assert conditions_need_update([], NOW, 60)


def test_node_conditions_keep_transition_times_of_unchanged_statuses():
    before = node_conditions([], "2026-01-01T12:00:00Z")
    unknown = [{**c, "status": "Unknown"} if c["type"] == "Ready" else c for c in before]
    after = node_conditions(unknown, "2026-01-01T12:05:00Z")
    by_type = {c["type"]: c for c in after}
    assert by_type["MemoryPressure"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert by_type["Ready"]["lastTransitionTime"] == "2026-01-01T12:05:00Z"
    assert by_type["Ready"]["lastHeartbeatTime"] == "2026-01-01T12:05:00Z"


@pytest.mark.parametrize(("index", "address"), [
    (0, "192.0.2.1"), (253, "192.0.2.254"), (254, "198.18.0.1"), (4999, "198.18.18.138")])
def test_simulated_addresses_are_documentation_and_benchmark_ranges(index, address):
    assert simulated_address(index) == address
