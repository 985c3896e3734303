"""LimitRanger: defaults from LimitRanges, and Kubernetes' refusal messages."""

from dataclasses import dataclass
from typing import Any

from nodeos.api.admission.limitranger import check_item, check_pod, default_pod
from nodeos.api.kinds import by_plural
from nodeos.api.model.policy import default_limit_range

LIMIT_RANGES = by_plural("", "v1", "limitranges")


@dataclass
class Entry:
    obj: dict[str, Any]


class FakeCache:
    """The one WatchCache method LimitRanger reads: ``list(prefix)``."""

    def __init__(self, *ranges: dict[str, Any]) -> None:
        self.entries = [Entry({"metadata": {"name": f"lr{i}"}, "spec": {"limits": r}}) for i, r in enumerate(ranges)]

    def list(self, prefix: str) -> list[Entry]:
        assert prefix == LIMIT_RANGES.store_prefix("team")
        return self.entries


def pod(*resources: dict[str, Any]) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": "x", **({"resources": r} if r is not None else {})}
                  for i, r in enumerate(resources)]
    return {"metadata": {"name": "web"}, "spec": {"containers": containers}}


def test_defaults_fill_only_what_is_missing():
    cache = FakeCache([{"type": "Container", "default": {"cpu": "500m", "memory": "1Gi"},
                        "defaultRequest": {"cpu": "100m"}}])
    p = pod(None, {"limits": {"cpu": "2"}, "requests": {"cpu": "1"}})
    assert default_pod(cache, "team", p)
    assert p["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "1Gi"},
                                                       "requests": {"cpu": "100m"}}
    assert p["spec"]["containers"][1]["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"},
                                                       "requests": {"cpu": "1"}}
    assert not default_pod(cache, "team", p)  # idempotent


def test_pod_items_and_empty_namespaces_default_nothing():
    assert not default_pod(FakeCache([{"type": "Pod", "max": {"cpu": "1"}}]), "team", pod(None))
    assert not default_pod(FakeCache(), "team", pod(None))


def test_min_max_messages_are_kubernetes():
    item = {"min": {"cpu": "100m"}, "max": {"cpu": "1"}}
    assert check_item("Container", item, {}, {"cpu": "500m"}) == [
        "minimum cpu usage per Container is 100m.  No request is specified"]
    assert check_item("Container", item, {"cpu": "50m"}, {"cpu": "500m"}) == [
        "minimum cpu usage per Container is 100m, but request is 50m"]
    assert check_item("Container", item, {"cpu": "200m"}, {}) == [
        "maximum cpu usage per Container is 1.  No limit is specified"]
    assert check_item("Container", item, {"cpu": "200m"}, {"cpu": "1500m"}) == [
        "maximum cpu usage per Container is 1, but limit is 1500m"]
    assert check_item("Container", item, {"cpu": "200m"}, {"cpu": "1"}) == []


def test_ratio_messages_are_kubernetes():
    item = {"maxLimitRequestRatio": {"memory": "2"}}
    assert check_item("Container", item, {"memory": "1Gi"}, {"memory": "3Gi"}) == [
        "memory max limit to request ratio per Container is 2, but provided ratio is 3.000000"]
    assert check_item("Container", item, {}, {"memory": "3Gi"}) == [
        "memory max limit to request ratio per Container is 2, but no request is specified or request is 0"]
    assert check_item("Container", item, {"memory": "1Gi"}, {}) == [
        "memory max limit to request ratio per Container is 2, but no limit is specified or limit is 0"]
    assert check_item("Container", item, {"memory": "1Gi"}, {"memory": "2Gi"}) == []


def test_pod_items_bound_the_sum_of_containers():
    cache = FakeCache([{"type": "Pod", "max": {"cpu": "1"}}])
    both = pod({"limits": {"cpu": "600m"}}, {"limits": {"cpu": "600m"}})
    assert check_pod(cache, "team", both) == ["maximum cpu usage per Pod is 1, but limit is 1200m"]
    assert check_pod(cache, "team", pod({"limits": {"cpu": "600m"}})) == []


def test_limit_range_defaulting_follows_kubernetes():
    lr = {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}},
                              {"type": "Pod", "max": {"cpu": "4"}}]}}
    default_limit_range(lr)
    assert lr["spec"]["limits"][0] == {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"},
                                       "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}}
    assert lr["spec"]["limits"][1] == {"type": "Pod", "max": {"cpu": "4"}}
