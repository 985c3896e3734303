"""The pure rules under the pod-owning controllers: deletion order, readiness
and availability, slow-start batches, expectations, ownership."""

from __future__ import annotations

import datetime as dt

import pytest
import trio

from nodeos.controllers import pods as podutil
from nodeos.controllers.expectations import Expectations
from nodeos.controllers.ownership import controller_ref, owner_reference

NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def pod(name: str, *, node: str = "", phase: str = "Running", ready_at: str | None = None,
        restarts: int = 0, created: str = "2025-01-01T10:00:00Z") -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready_at else "False",
                   **({"lastTransitionTime": ready_at} if ready_at else {})}]
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def test_deletion_order_follows_kubernetes_ranks():
    pods = [
        pod("old-ready", node="n", ready_at="2025-01-01T10:00:00Z"),
        pod("recently-ready", node="n", ready_at="2025-01-01T11:59:00Z"),
        pod("restarting", node="n", ready_at="2025-01-01T10:00:00Z", restarts=3),
        pod("unready", node="n"),
        pod("pending", node="n", phase="Pending"),
        pod("unknown", node="n", phase="Unknown"),
        pod("unassigned", phase="Pending"),
        pod("newer-unready", node="n", created="2025-01-01T11:00:00Z"),
    ]
    order = [p["metadata"]["name"] for p in podutil.pods_to_delete(pods, len(pods), NOW)]
    assert order == ["unassigned", "pending", "unknown", "newer-unready", "unready",
                     "recently-ready", "restarting", "old-ready"]
    assert [p["metadata"]["name"] for p in podutil.pods_to_delete(pods, 2, NOW)] == ["unassigned", "pending"]


def test_availability_needs_min_ready_seconds_of_readiness():
    ready = pod("a", ready_at="2025-01-01T11:59:50Z")
    assert podutil.is_ready(ready) and podutil.is_available(ready, 0, NOW)
    assert podutil.is_available(ready, 10, NOW) and not podutil.is_available(ready, 11, NOW)
    assert podutil.seconds_until_available(ready, 30, NOW) == 20.0
    assert podutil.seconds_until_available(pod("b"), 0, NOW) is None


def test_active_excludes_terminal_and_terminating_pods():
    assert podutil.is_active(pod("a"))
    assert not podutil.is_active(pod("b", phase="Succeeded"))
    assert not podutil.is_active(pod("c", phase="Failed"))
    terminating = pod("d")
    terminating["metadata"]["deletionTimestamp"] = "2025-01-01T12:00:30Z"
    assert not podutil.is_active(terminating)


def test_pod_from_template_copies_what_kubernetes_copies():
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "web", "namespace": "prod", "uid": "u1"}}
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}, "name": "ignored"},
                "spec": {"containers": [{"name": "c", "image": "img"}]}}
    created = podutil.pod_from_template(template, owner, owner_reference(owner))
    assert created["metadata"] == {"generateName": "web-", "namespace": "prod", "labels": {"app": "web"},
                                   "annotations": {"a": "b"}, "ownerReferences": [owner_reference(owner)]}
    assert controller_ref(created)["uid"] == "u1" and controller_ref(created)["blockOwnerDeletion"] is True
    created["spec"]["containers"][0]["image"] = "changed"
    assert template["spec"]["containers"][0]["image"] == "img"  # a copy, never the template itself


async def test_slow_start_batches_grow_and_stop_at_the_first_failure():
    calls = 0

    async def works() -> None:
        nonlocal calls
        calls += 1

    assert await podutil.slow_start_batch(10, works) == (10, None)
    assert calls == 10

    calls = 0

    async def fails_from_the_fourth() -> None:
        nonlocal calls
        calls += 1
        await trio.sleep(0)
        if calls > 3:
            raise ValueError("refused")

    done, error = await podutil.slow_start_batch(100, fails_from_the_fourth)
    # batches of 1, 2 succeed; the batch of 4 has failures; nothing after it
    assert calls == 7 and done == 3 and isinstance(error, ValueError)


def test_expectations_count_creations_and_track_deletions_by_key():
    clock = [0.0]
    expect = Expectations(clock=lambda: clock[0], timeout=300)
    assert expect.satisfied("ns/rs")
    expect.expect_creations("ns/rs", 2)
    assert not expect.satisfied("ns/rs")
    expect.creation_observed("ns/rs")
    expect.creation_observed("ns/other")
    assert expect.pending("ns/rs") == (1, 0) and not expect.satisfied("ns/rs")
    expect.creation_observed("ns/rs")
    assert expect.satisfied("ns/rs")

    expect.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    expect.deletion_observed("ns/rs", "ns/a")
    expect.deletion_observed("ns/rs", "ns/a")  # seen terminating, then seen deleted: counts once
    assert expect.pending("ns/rs") == (0, 1)
    clock[0] = 301.0  # a lost event stalls an owner for five minutes at most
    assert expect.satisfied("ns/rs")
    expect.forget("ns/rs")
    assert expect.pending("ns/rs") == (0, 0)


@pytest.mark.parametrize("refs, expected", [
    ([], None),
    ([{"uid": "a", "controller": False}], None),
    ([{"uid": "a"}, {"uid": "b", "controller": True}], "b"),
])
def test_controller_ref_is_the_one_with_controller_true(refs, expected):
    found = controller_ref({"metadata": {"ownerReferences": refs}})
    assert (found or {}).get("uid") == expected
