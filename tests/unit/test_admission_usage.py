"""Quota usage of objects, and the quantities quota status prints."""

from decimal import Decimal

from nodeos.api.admission.usage import format_quantity, pod_requests, total, usage_of
from nodeos.api.kinds import by_plural

PODS = by_plural("", "v1", "pods")
SERVICES = by_plural("", "v1", "services")
DEPLOYMENTS = by_plural("apps", "v1", "deployments")


def container(name: str, requests: dict | None = None, limits: dict | None = None) -> dict:
    return {"name": name, "image": "x", "resources": {"requests": requests or {}, "limits": limits or {}}}


def test_a_pod_costs_one_pod_and_its_requests_and_limits():
    pod = {"spec": {"containers": [container("a", {"cpu": "250m", "memory": "64Mi"}, {"cpu": "1"}),
                                   container("b", {"cpu": "250m"}, {"memory": "128Mi"})]},
           "status": {"phase": "Running"}}
    assert usage_of(PODS, pod) == {
        "pods": 1, "count/pods": 1, "requests.cpu": Decimal("0.5"), "cpu": Decimal("0.5"),
        "requests.memory": 64 * 2**20, "memory": 64 * 2**20, "limits.cpu": 1, "limits.memory": 128 * 2**20,
    }


def test_init_containers_count_by_the_largest_not_the_sum():
    spec = {"containers": [container("a", {"cpu": "100m"}), container("b", {"cpu": "100m"})],
            "initContainers": [container("i", {"cpu": "500m"}), container("j", {"cpu": "50m", "memory": "1Mi"})]}
    assert pod_requests(spec, "requests") == {"cpu": Decimal("0.5"), "memory": 2**20}


def test_finished_pods_cost_nothing():
    for phase in ("Succeeded", "Failed"):
        finished = {"spec": {"containers": [container("a", {"cpu": "1"})]}, "status": {"phase": phase}}
        assert usage_of(PODS, finished) == {}


def test_services_count_node_ports_and_load_balancers():
    lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
    assert usage_of(SERVICES, lb) == {"services": 1, "count/services": 1, "services.loadbalancers": 1,
                                      "services.nodeports": 2}
    assert usage_of(SERVICES, {"spec": {}}) == {"services": 1, "count/services": 1}


def test_other_kinds_count_by_qualified_name():
    assert usage_of(DEPLOYMENTS, {}) == {"count/deployments.apps": 1}


def test_total_sums_by_name():
    assert total([{"pods": Decimal(1)}, {"pods": Decimal(2), "cpu": Decimal("0.1")}]) == {
        "pods": 3, "cpu": Decimal("0.1")}


def test_quantities_print_canonically():
    assert format_quantity("pods", Decimal(3)) == "3"
    assert format_quantity("requests.cpu", Decimal("0.8")) == "800m"
    assert format_quantity("cpu", Decimal("1.0")) == "1"
    assert format_quantity("limits.memory", Decimal(2**30)) == "1Gi"
    assert format_quantity("memory", Decimal(3 * 2**20)) == "3Mi"
    assert format_quantity("memory", Decimal(1000)) == "1000"
    assert format_quantity("requests.cpu", Decimal("0.0000005")) == "500n"
    assert format_quantity("memory", Decimal(0)) == "0"
