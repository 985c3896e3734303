"""Each predicate as a plain function over a pod and a node, with Kubernetes' reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nodeos.scheduler import predicates as p
from nodeos.scheduler.info import NodeInfo
from tests.unit.test_scheduler_objects import node_info, pod_info

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}


def fill(info: NodeInfo, *pods: tuple[str, ...]) -> NodeInfo:
    for i, args in enumerate(pods):
        info.add(pod_info(f"existing-{i}", *args))
    return info


def test_cordoned_nodes_take_only_pods_tolerating_unschedulable() -> None:
    cordoned = node_info(unschedulable=True)
    assert p.node_unschedulable(pod_info(), cordoned) == "node(s) were unschedulable"
    tolerant = pod_info(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
    assert p.node_unschedulable(tolerant, cordoned) is None
    assert p.node_unschedulable(pod_info(), node_info()) is None


def test_nodes_not_ready_unless_the_implied_taint_is_tolerated() -> None:
    assert p.node_ready(pod_info(), node_info(ready="True")) is None
    assert p.node_ready(pod_info(), node_info(ready="False")) == "node(s) were not ready"
    assert p.node_ready(pod_info(), node_info(ready="Unknown")) == "node(s) were not ready"
    daemon_like = pod_info(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
                                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists"}])
    assert p.node_ready(daemon_like, node_info(ready="False")) is None
    assert p.node_ready(daemon_like, node_info(ready="Unknown")) is None


def test_taint_reason_names_the_first_untolerated_taint() -> None:
    tainted = node_info(taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}, UNREACHABLE,
                                {"key": "soft", "effect": "PreferNoSchedule"}])
    assert p.untolerated_taint(pod_info(), tainted) == "node(s) had untolerated taint {gpu: yes}"
    gpu = {"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}
    assert p.untolerated_taint(pod_info(tolerations=[gpu]), tainted) == \
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
    everything = {"operator": "Exists"}  # empty key with Exists tolerates every taint
    assert p.untolerated_taint(pod_info(tolerations=[everything]), tainted) is None
    # PreferNoSchedule never filters
    assert p.untolerated_taint(pod_info(), node_info(taints=[{"key": "soft", "effect": "PreferNoSchedule"}])) is None


@pytest.mark.parametrize(("toleration", "taint", "expected"), [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),  # default Equal, any effect
    ({"key": "k", "value": "other"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "anything", "effect": "NoSchedule"}, True),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"operator": "Exists", "effect": "NoSchedule"}, {"key": "any", "effect": "NoSchedule"}, True),
    ({"operator": "Exists", "effect": "NoSchedule"}, {"key": "any", "effect": "NoExecute"}, False),
    ({"key": "k"}, {"key": "k", "effect": "NoSchedule"}, True),  # Equal to the empty value
])
def test_toleration_matching(toleration, taint, expected) -> None:
    assert p.tolerates(toleration, taint) is expected


def test_node_selector_must_match_every_label() -> None:
    ssd = node_info(labels={"disk": "ssd", "zone": "a"})
    assert p.node_affinity(pod_info(node_selector={"disk": "ssd"}), ssd) is None
    assert p.node_affinity(pod_info(node_selector={"disk": "ssd", "zone": "b"}), ssd) == \
        "node(s) didn't match Pod's node affinity/selector"


def required(*expressions: dict, fields: list[dict] | None = None) -> dict:
    term = {"matchExpressions": list(expressions), **({"matchFields": fields} if fields else {})}
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}


@pytest.mark.parametrize(("expression", "fits"), [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "In", "values": ["c"]}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["c"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
    ({"key": "zone", "operator": "Exists"}, True),
    ({"key": "missing", "operator": "Exists"}, False),
    ({"key": "missing", "operator": "DoesNotExist"}, True),
    ({"key": "zone", "operator": "DoesNotExist"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["7"]}, True),
    ({"key": "cores", "operator": "Lt", "values": ["7"]}, False),
])
def test_required_node_affinity_operators(expression, fits) -> None:
    info = node_info(labels={"zone": "a", "cores": "8"})
    assert (p.node_affinity(pod_info(affinity=required(expression)), info) is None) is fits


def test_required_terms_are_ored_and_match_fields_by_name() -> None:
    info = node_info("n2", labels={"zone": "a"})
    terms = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]},
    ]}}
    assert p.node_affinity(pod_info(affinity=terms), info) is None
    only_n1 = required(fields=[{"key": "metadata.name", "operator": "In", "values": ["n1"]}])
    assert p.node_affinity(pod_info(affinity=only_n1), info) is not None
    empty_term = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]}}
    assert p.node_affinity(pod_info(affinity=empty_term), info) is not None  # an empty term matches nothing


def test_host_ports_conflict_on_the_same_protocol_and_port() -> None:
    info = fill(node_info())
    info.add(pod_info("web", host_port=8080))
    assert p.host_ports(pod_info(host_port=8080), info) == "node(s) didn't have free ports for the requested pod ports"
    assert p.host_ports(pod_info(host_port=8081), info) is None
    udp = replace(pod_info(), host_ports=(("0.0.0.0", "UDP", 8080),))
    assert p.host_ports(udp, info) is None
    info.remove(pod_info("web", host_port=8080))
    assert p.host_ports(pod_info(host_port=8080), info) is None


def test_specific_host_ips_conflict_only_with_themselves_and_the_wildcard() -> None:
    info = node_info()
    base = pod_info("a", host_port=80)
    on_ip = replace(base, host_ports=(("10.0.0.1", "TCP", 80),))
    info.add(on_ip)
    other_ip = replace(base, host_ports=(("10.0.0.2", "TCP", 80),))
    assert p.host_ports(other_ip, info) is None
    assert p.host_ports(on_ip, info) is not None
    assert p.host_ports(base, info) is not None  # 0.0.0.0 wants it on every IP


def test_resources_against_allocatable() -> None:
    info = fill(node_info(cpu="2", memory="4Gi", pods=3), ("1500m", "1Gi"))
    assert p.cpu_fits(pod_info("x", "500m"), info) is None
    assert p.cpu_fits(pod_info("x", "501m"), info) == "Insufficient cpu"
    assert p.memory_fits(pod_info("x", None, "3Gi"), info) is None
    assert p.memory_fits(pod_info("x", None, "3073Mi"), info) == "Insufficient memory"
    assert p.pod_count(pod_info(), info) is None
    fill(info, (), ())
    assert p.pod_count(pod_info(), info) == "Too many pods"  # even a pod without requests takes a slot


def test_a_node_fails_on_its_first_failing_group_with_all_its_reasons() -> None:
    big = pod_info("x", "8", "64Gi")
    groups = p.filters_for(big)
    assert p.failures(groups, big, node_info()) == ["Insufficient cpu", "Insufficient memory"]
    assert p.failures(groups, big, node_info(unschedulable=True)) == ["node(s) were unschedulable"]
    assert p.failures(groups, pod_info("small", "1"), node_info()) == []


def test_groups_a_pod_cannot_fail_are_skipped() -> None:
    assert p.node_affinity not in {f for g in p.filters_for(pod_info()) for f in g}
    assert p.host_ports not in {f for g in p.filters_for(pod_info()) for f in g}
    assert p.host_ports in {f for g in p.filters_for(pod_info(host_port=1)) for f in g}
