"""metrics.k8s.io from the agents' summaries: conversion, discovery, and asking agents that may not answer."""

from __future__ import annotations

import socket

import pytest
import trio

from nodeos.agent.server import serve_agent
from nodeos.api.agents import AgentDialer
from nodeos.api.http import discovery
from nodeos.api.metrics import agents
from nodeos.api.metrics.convert import cpu_quantity, memory_quantity, node_metrics, pod_metrics

T = "2026-01-01T00:00:00Z"


def _figures(cpu: int | None, memory: int | None) -> dict:
    cpu_part = {"time": T} | ({"usageNanoCores": cpu} if cpu is not None else {})
    memory_part = {"time": T} | ({"workingSetBytes": memory} if memory is not None else {})
    return {"cpu": cpu_part, "memory": memory_part}


def _summary(source: str = "podman", **pod_containers: tuple[int | None, int | None]) -> dict:
    return {"node": {"nodeName": "n1", **_figures(1_500_000_000, 3 << 30)}, "window": "10.002s", "source": source,
            "pods": [{"podRef": {"name": "web", "namespace": "ns", "uid": "u"}, **_figures(0, 0),
                      "containers": [{"name": n, **_figures(*f)} for n, f in pod_containers.items()]}]}


NODE = {"metadata": {"name": "n1", "labels": {"zone": "a"}}}
POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "u", "labels": {"app": "web"}}}


@pytest.mark.parametrize(("size", "text"), [(0, "0Ki"), (2048, "2Ki"), (2049, "2049"), (3 << 30, "3145728Ki")])
def test_memory_quantity(size, text):
    assert memory_quantity(size) == text


def test_node_metrics():
    assert node_metrics(NODE, _summary()) == {
        "kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": "n1", "creationTimestamp": T, "labels": {"zone": "a"}},
        "timestamp": T, "window": "10.002s", "usage": {"cpu": "1500000000n", "memory": "3145728Ki"}}
    assert cpu_quantity(12) == "12n"


def test_pod_metrics_and_the_simulated_mark():
    metrics = pod_metrics(POD, _summary("simulated", app=(5, 4096), log=(7, 10))["pods"][0],
                          _summary("simulated"))
    assert metrics["containers"] == [{"name": "app", "usage": {"cpu": "5n", "memory": "4Ki"}},
                                     {"name": "log", "usage": {"cpu": "7n", "memory": "10"}}]
    assert metrics["metadata"] == {"name": "web", "namespace": "ns", "creationTimestamp": T,
                                   "labels": {"app": "web"}, "annotations": {"nodeos.io/usage-source": "simulated"}}


def test_incomplete_figures_are_left_out():
    assert pod_metrics(POD, _summary(app=(5, 10), new=(None, 10))["pods"][0], _summary()) is None
    assert pod_metrics(POD, _summary()["pods"][0], _summary()) is None  # no containers
    summary = _summary()
    del summary["node"]["cpu"]["usageNanoCores"]
    assert node_metrics(NODE, summary) is None


def test_a_first_sample_window_is_reported_as_the_period():
    summary = _summary() | {"window": "0.000s"}
    assert node_metrics(NODE, summary)["window"] == "10s"


def test_discovery_lists_the_group():
    groups = {g["name"]: g for g in discovery.api_group_list()["groups"]}
    assert groups["metrics.k8s.io"]["preferredVersion"]["groupVersion"] == "metrics.k8s.io/v1beta1"
    assert discovery.api_group("metrics.k8s.io") == groups["metrics.k8s.io"]
    resources = discovery.resource_list("metrics.k8s.io", "v1beta1")["resources"]
    assert [(r["name"], r["kind"], r["namespaced"], r["verbs"]) for r in resources] == [
        ("nodes", "NodeMetrics", False, ["get", "list"]), ("pods", "PodMetrics", True, ["get", "list"])]


def _node(name: str, port: int | None, ready: bool = True) -> dict:
    status: dict = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"metadata": {"name": name}, "status": status}


def test_only_ready_nodes_with_an_agent_are_asked():
    assert agents.serves_agent(_node("a", 10250))
    assert not agents.serves_agent(_node("a", 10250, ready=False))
    assert not agents.serves_agent(_node("a", None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_silent_and_refusing_agents_are_left_out_within_the_timeout(nursery):
    answering, wrong_token, refusing = _free_port(), _free_port(), _free_port()
    for port, token in ((answering, "t"), (wrong_token, "other")):
        await nursery.start(lambda task_status, port=port, token=token: serve_agent(
            None, host="127.0.0.1", port=port, token=token, stats=lambda: _summary(), task_status=task_status))
    silent = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]  # accepts, never answers
    silent_port = silent.socket.getsockname()[1]
    nodes = [_node("ok", answering), _node("wrong-token", wrong_token), _node("refusing", refusing),
             _node("silent", silent_port), _node("not-ready", answering, ready=False)]
    started = trio.current_time()
    found = await agents.fetch_summaries(nodes, AgentDialer(token="t"), timeout=1.0)
    elapsed = trio.current_time() - started
    assert list(found) == ["ok"] and found["ok"]["node"]["nodeName"] == "n1"
    assert 1.0 <= elapsed < 3
    await silent.aclose()
