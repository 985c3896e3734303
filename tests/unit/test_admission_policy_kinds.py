"""The ResourceQuota and LimitRange kinds: validation and the table kubectl prints."""

from datetime import UTC, datetime

from nodeos.api import model
from nodeos.api.kinds import by_kind, resolve
from nodeos.api.tables import column_definitions, table_rows

QUOTA = by_kind("v1", "ResourceQuota")
LIMIT_RANGE = by_kind("v1", "LimitRange")
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def messages(resource, obj) -> list[str]:
    obj = {"metadata": {"name": "x", "namespace": "default"}, **obj}
    return [f"{c.field}: {c.message}" for c in model.validate(resource, obj, None)]


def test_kubectl_names_resolve():
    assert resolve("quota") is QUOTA and resolve("resourcequotas") is QUOTA
    assert resolve("limits") is LIMIT_RANGE and resolve("limitrange") is LIMIT_RANGE


def test_quota_validation():
    assert messages(QUOTA, {"spec": {"hard": {"pods": "10", "requests.memory": "1Gi"}}}) == []
    assert messages(QUOTA, {"spec": {"hard": {"pods": "-1"}}}) == [
        'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0']
    assert messages(QUOTA, {"spec": {"hard": {"pods": "ten"}}})[0].startswith("spec.hard[pods]: Invalid value")
    assert messages(QUOTA, {"spec": {"scopes": ["BestEffort"]}}) == [
        "spec.scopes: Forbidden: quota scopes are not supported by nodeos"]


def test_limit_range_validation():
    assert messages(LIMIT_RANGE, {"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}}) == []
    assert messages(LIMIT_RANGE, {"spec": {"limits": [{"type": "Node"}]}})[0].startswith(
        'spec.limits[0].type: Unsupported value: "Node"')
    assert messages(LIMIT_RANGE, {"spec": {"limits": [{"type": "Pod", "default": {"cpu": "1"}}]}}) == [
        "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"]
    assert messages(LIMIT_RANGE, {"spec": {"limits": [{"type": "Container",
                                                       "maxLimitRequestRatio": {"cpu": "0.5"}}]}}) == [
        'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "0.5": ratio must be greater than or equal to 1']
    assert messages(LIMIT_RANGE, {"spec": {"limits": "all"}})


def test_quota_table_splits_requests_and_limits_as_kubectl_shows_them():
    quota = {"metadata": {"name": "q", "creationTimestamp": "2024-06-01T11:55:00Z"},
             "status": {"hard": {"pods": "2", "limits.cpu": "2", "requests.cpu": "1", "services": "5"},
                        "used": {"pods": "1", "limits.cpu": "500m", "requests.cpu": "250m"}}}
    columns = [c["name"] for c in column_definitions(QUOTA)]
    assert columns == ["Name", "Age", "Request", "Limit"]
    row = table_rows(QUOTA, [quota], "None", NOW)[0]["cells"]
    assert row == ["q", "5m", "pods: 1/2, requests.cpu: 250m/1, services: 0/5", "limits.cpu: 500m/2"]


def test_limit_range_table_is_name_and_created_at():
    assert [c["name"] for c in column_definitions(LIMIT_RANGE)] == ["Name", "Created At"]
