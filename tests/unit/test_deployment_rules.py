"""The pure parts of the Deployment controller: hashes, revisions, rollout
arithmetic (rounding, proportional scaling) and status conditions."""

from __future__ import annotations

import datetime as dt

import pytest

from nodeos.controllers.deployment import revisions, strategy
from nodeos.controllers.deployment import status as dstatus

NOW = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def deployment(replicas: int = 10, surge: int | str = "25%", unavailable: int | str = "25%", **spec) -> dict:
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d1", "generation": 1},
            "apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                     "progressDeadlineSeconds": 600, **spec}}


def rs(name: str, replicas: int, *, available: int = 0, created: str = "2025-01-01T10:00:00Z",
       annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations or {}, "uid": name},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "availableReplicas": available, "readyReplicas": available}}


# -- hashes and revisions ------------------------------------------------------------


def test_template_hash_is_stable_short_and_name_safe():
    template = deployment()["spec"]["template"]
    first = revisions.template_hash(template)
    assert first == revisions.template_hash({"spec": template["spec"], "metadata": template["metadata"]})
    assert 8 <= len(first) <= 10 and set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert revisions.template_hash(changed) != first
    assert revisions.template_hash(template, collision_count=1) != first


def test_the_new_replica_set_is_found_by_template_not_by_name():
    d = deployment()
    same = {"metadata": {"name": "whatever", "creationTimestamp": "2025-01-01T11:00:00Z"},
            "spec": {"template": {**d["spec"]["template"],
                                  "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}}}}}
    other = {"metadata": {"name": "web-old", "creationTimestamp": "2025-01-01T10:00:00Z"},
             "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}}
    new, old = revisions.split_new_and_old(d, [other, same])
    assert new is same and old == [other]


def test_new_replica_set_carries_hash_revision_and_sizes():
    d = deployment(replicas=4)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "set image",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    made = revisions.new_replica_set(d, 3, replicas=1, max_surge=1)
    pod_hash = revisions.template_hash(d["spec"]["template"])
    assert made["metadata"]["name"] == f"web-{pod_hash}"
    assert made["metadata"]["annotations"] == {"kubernetes.io/change-cause": "set image", revisions.REVISION: "3",
                                               revisions.DESIRED_REPLICAS: "4", revisions.MAX_REPLICAS: "5"}
    assert made["spec"]["selector"]["matchLabels"]["pod-template-hash"] == pod_hash
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]  # the Deployment is untouched
    assert made["metadata"]["ownerReferences"][0]["uid"] == "d1"


def test_a_reused_replica_set_gets_the_next_revision_and_keeps_its_history():
    d = deployment()
    old = rs("web-a", 0, annotations={revisions.REVISION: "1"})
    assert revisions.sync_new_annotations(d, old, 3)
    assert old["metadata"]["annotations"][revisions.REVISION] == "3"
    assert old["metadata"]["annotations"][revisions.REVISION_HISTORY] == "1"
    assert revisions.sync_new_annotations(d, old, 5)
    assert old["metadata"]["annotations"][revisions.REVISION_HISTORY] == "1,3"
    assert not revisions.sync_new_annotations(d, old, 5)  # idempotent


def test_history_cleanup_keeps_the_limit_and_only_settled_zero_sets():
    d = deployment(revisionHistoryLimit=1)
    oldest = rs("a", 0, annotations={revisions.REVISION: "1"})
    busy = rs("b", 1, annotations={revisions.REVISION: "2"})
    newest_old = rs("c", 0, annotations={revisions.REVISION: "3"})
    for one in (oldest, busy, newest_old):
        one["status"] = {"replicas": one["spec"]["replicas"]}
    assert revisions.history_to_clean(d, [newest_old, busy, oldest]) == [oldest]  # busy is still scaled up


# -- rollout arithmetic -----------------------------------------------------------------


@pytest.mark.parametrize("surge, unavailable, replicas, expected", [
    ("25%", "25%", 3, (1, 0)),      # surge rounds up, unavailable down
    ("25%", "25%", 10, (3, 2)),
    (0, 0, 5, (0, 1)),              # both zero would block every rollout
    (2, "50%", 5, (2, 2)),
    ("0%", "0%", 4, (0, 1)),
])
def test_fenceposts_round_as_kubernetes(surge, unavailable, replicas, expected):
    assert strategy.fenceposts(deployment(replicas, surge, unavailable)) == expected


def test_max_unavailable_never_exceeds_replicas_and_is_zero_for_recreate():
    assert strategy.max_unavailable(deployment(2, 0, 5)) == 2
    recreate = deployment(4)
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    assert strategy.max_unavailable(recreate) == 0 and strategy.max_surge(recreate) == 0
    assert strategy.new_rs_target(recreate, [rs("old", 4)], None) == 4


def test_the_new_replica_set_grows_only_into_the_surge_room():
    d = deployment(10, 3, 2)
    assert strategy.new_rs_target(d, [rs("old", 10)], None) == 3
    new = rs("new", 3)
    assert strategy.new_rs_target(d, [rs("old", 10), new], new) == 3  # 13 already: no room
    assert strategy.new_rs_target(d, [rs("old", 5), new], new) == 8
    assert strategy.new_rs_target(d, [rs("old", 0), new], new) == 10  # never past replicas


def test_proportional_scaling_spreads_extra_replicas_by_size():
    # Kubernetes' documented example: 10 replicas, maxSurge 3, mid-rollout at 8 old + 5 new,
    # scaled to 15: 18 allowed, the 5 extra go 3 to the old and 2 to the new ReplicaSet.
    d = deployment(15, 3, 2)
    sized_for = {revisions.MAX_REPLICAS: "13", revisions.DESIRED_REPLICAS: "10"}
    old = rs("old", 8, created="2025-01-01T10:00:00Z", annotations=dict(sized_for))
    new = rs("new", 5, created="2025-01-01T11:00:00Z", annotations=dict(sized_for))
    assert strategy.proportional_sizes(d, [old, new]) == {"old": 11, "new": 7}
    smaller = deployment(5, 3, 2)  # 8 allowed: 13 -> 8, in proportion
    assert strategy.proportional_sizes(smaller, [old, new]) == {"old": 5, "new": 3}
    to_zero = deployment(0, 3, 2)
    assert strategy.proportional_sizes(to_zero, [old, new]) == {"old": 0, "new": 0}


def test_active_or_latest_picks_the_single_candidate():
    new, old = rs("new", 0), [rs("a", 0, created="2025-01-01T09:00:00Z"), rs("b", 0)]
    assert strategy.active_or_latest(new, old) is new
    assert strategy.active_or_latest(None, old)["metadata"]["name"] == "b"
    assert strategy.active_or_latest(new, [rs("a", 2)])["metadata"]["name"] == "a"
    assert strategy.active_or_latest(rs("n", 1), [rs("a", 2)]) is None


# -- status and conditions -------------------------------------------------------------


def test_status_sums_replica_sets_and_says_whether_minimum_is_available():
    d = deployment(4, 1, 1)
    new, old = rs("new", 2, available=1), rs("old", 3, available=3)
    status = dstatus.calculate(d, [old, new], new, NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1, "replicas": 5, "updatedReplicas": 2, "readyReplicas": 4,
        "availableReplicas": 4, "unavailableReplicas": 1}
    assert dstatus.get_condition(status, "Available")["reason"] == "MinimumReplicasAvailable"
    short = dstatus.calculate(d, [rs("old", 4, available=2)], None, NOW)
    assert dstatus.get_condition(short, "Available")["status"] == "False"


def test_progressing_tells_the_story_of_a_rollout():
    d = deployment(2, 1, 0, progressDeadlineSeconds=60)
    d["status"] = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 2,
                   "conditions": [dstatus.new_condition("Progressing", "True", "NewReplicaSetCreated", "x",
                                                        NOW - dt.timedelta(seconds=30))]}
    new, old = rs("new", 2, available=1), rs("old", 1, available=1)
    moved = dstatus.rollout(d, [old, new], new, NOW)  # one more updated pod: progress, lastUpdateTime renewed
    cond = dstatus.get_condition(moved, "Progressing")
    assert cond["reason"] == "ReplicaSetUpdated" and cond["lastUpdateTime"] == "2025-01-01T12:00:00Z"
    assert cond["lastTransitionTime"] == "2025-01-01T11:59:30Z"
    assert cond["message"] == 'ReplicaSet "new" is progressing.'

    d["status"] = moved
    stuck_later = NOW + dt.timedelta(seconds=61)
    timed_out = dstatus.rollout(d, [old, new], new, stuck_later)
    cond = dstatus.get_condition(timed_out, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert dstatus.seconds_until_deadline(d, moved, NOW + dt.timedelta(seconds=20)) == pytest.approx(41.0)

    done = dstatus.rollout(d, [rs("old", 0), rs("new", 2, available=2)], rs("new", 2, available=2), NOW)
    assert dstatus.get_condition(done, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_set_condition_keeps_transition_time_and_ignores_repeats():
    status: dict = {}
    first = dstatus.new_condition("Available", "True", "MinimumReplicasAvailable", "m", NOW)
    dstatus.set_condition(status, first)
    dstatus.set_condition(status, dstatus.new_condition("Available", "True", "MinimumReplicasAvailable", "m",
                                                        NOW + dt.timedelta(seconds=5)))
    assert status["conditions"] == [first]
    dstatus.set_condition(status, dstatus.new_condition("Available", "False", "MinimumReplicasUnavailable", "m",
                                                        NOW + dt.timedelta(seconds=9)))
    assert status["conditions"][0]["lastTransitionTime"] == "2025-01-01T12:00:09Z"


def test_templates_compare_as_kubernetes_typed_structs_do():
    # `kubectl rollout undo` re-encodes the old template from Go structs: nulls appear.
    stored = {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
              "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]}}
    reencoded = {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "c", "image": "nginx", "env": []}]}}
    assert revisions.equal_ignore_hash(stored, reencoded)
    without_label = {**stored, "metadata": {"labels": {"app": "web"}}}
    assert revisions.template_hash(without_label) == revisions.template_hash(reencoded)
    assert not revisions.equal_ignore_hash(stored, {**reencoded, "spec": {"containers": [{"name": "c"}]}})
