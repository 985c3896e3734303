"""ResourceQuota admission's pure parts: which stated resources a quota requires."""

from decimal import Decimal

from nodeos.api.admission.resourcequota import missing_requests
from nodeos.api.kinds import by_plural

PODS = by_plural("", "v1", "pods")
SERVICES = by_plural("", "v1", "services")


def pod(*containers: dict) -> dict:
    return {"spec": {"containers": list(containers)}}


def test_every_container_must_state_what_the_quota_limits():
    hard = {"cpu": Decimal(1), "limits.memory": Decimal(2**30), "pods": Decimal(5)}
    bare = {"name": "app"}
    sidecar = {"name": "sidecar", "resources": {"requests": {"cpu": "10m"}, "limits": {"memory": "8Mi"}}}
    assert missing_requests(PODS, pod(bare, sidecar), hard) == ["cpu for: app", "limits.memory for: app"]
    assert missing_requests(PODS, pod(sidecar), hard) == []
    init = {"spec": {"containers": [sidecar], "initContainers": [{"name": "init"}, {"name": "init2"}]}}
    assert missing_requests(PODS, init, {"requests.memory": Decimal(1)}) == [
        "requests.memory for: init,init2,sidecar"]


def test_counts_and_other_kinds_require_nothing():
    assert missing_requests(PODS, pod({"name": "app"}), {"pods": Decimal(1), "requests.storage": Decimal(1)}) == []
    assert missing_requests(SERVICES, {"spec": {}}, {"limits.cpu": Decimal(1)}) == []
