"""The Deployment controller with the ReplicaSet controller against a real API
server, and ``FakeAgent`` (tests/unit/test_replicaset.py) playing the nodes."""

from __future__ import annotations

import copy
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import Informer
from nodeos.controllers import replicaset
from nodeos.controllers.deployment import build
from nodeos.controllers.deployment.revisions import POD_TEMPLATE_HASH, REVISION, REVISION_HISTORY, template_hash
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.controllers.ownership import controller_ref
from nodeos.controllers.pods import is_ready, is_terminating
from tests.unit.test_replicaset import FakeAgent, running, template, wait_for

DEPLOYMENTS = by_plural("apps", "v1", "deployments")
RS = replicaset.REPLICASETS
PODS = replicaset.PODS


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": template(labels, image), **spec}}


def controllers(api):
    return (replicaset.build(api, EventRecorder(api, "replicaset-controller"), None),
            build(api, EventRecorder(api, "deployment-controller"), None), FakeAgent(api))


async def replica_sets(api, name: str = "web") -> list[dict[str, Any]]:
    items = (await api.list(RS, "default"))["items"]
    return sorted((rs for rs in items if (controller_ref(rs) or {}).get("name") == name),
                  key=lambda rs: int(rs["metadata"]["annotations"].get(REVISION, "0")))


async def rolled_out(api, name: str = "web"):
    """The Deployment once ``kubectl rollout status`` would say it is done."""
    d = await api.get(DEPLOYMENTS, name, "default")
    status, want = d.get("status") or {}, d["spec"]["replicas"]
    progressing = next((c for c in status.get("conditions") or [] if c["type"] == "Progressing"), {})
    done = (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want and progressing.get("reason") == "NewReplicaSetAvailable")
    return d if done else None


def conditions(d: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in (d.get("status") or {}).get("conditions") or []}


async def set_image(api, image: str, name: str = "web") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
    await api.patch(DEPLOYMENTS, name, patch, "strategic", namespace="default")


async def test_a_new_deployment_gets_a_hashed_replica_set_and_completes(api):
    created = await api.create(DEPLOYMENTS, deployment())
    async with running(*controllers(api)):
        d = await wait_for(lambda: rolled_out(api))
        [rs] = await replica_sets(api)
    pod_hash = template_hash(created["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{pod_hash}" and len(pod_hash) >= 8
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", POD_TEMPLATE_HASH: pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", POD_TEMPLATE_HASH: pod_hash}
    assert rs["metadata"]["labels"] == {"app": "web", POD_TEMPLATE_HASH: pod_hash}
    assert rs["metadata"]["annotations"] == {REVISION: "1", "deployment.kubernetes.io/desired-replicas": "3",
                                             "deployment.kubernetes.io/max-replicas": "4"}
    assert controller_ref(rs)["uid"] == created["metadata"]["uid"]
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert d["status"]["readyReplicas"] == 3 and "unavailableReplicas" not in d["status"]
    assert conditions(d) == {"Available": ("True", "MinimumReplicasAvailable"),
                             "Progressing": ("True", "NewReplicaSetAvailable")}
    messages = [e["message"] for e in (await api.list(EVENTS, "default"))["items"]
                if e["reason"] == "ScalingReplicaSet"]
    assert messages == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]


class PodWatcher:
    """Checks an invariant on the Deployment's pods after every pod event."""

    def __init__(self, api, check) -> None:
        self.informer = Informer(api, PODS, resync_period=None)
        self.check = check
        self.violations: list[str] = []
        self.informer.add_handlers(on_add=self._look, on_update=lambda _o, n: self._look(n), on_delete=self._look)

    def _look(self, _pod) -> None:
        problem = self.check(self.informer.list())
        if problem:
            self.violations.append(problem)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self.informer.run(task_status=task_status)


async def test_rolling_update_stays_within_surge_and_unavailability(api):
    await api.create(DEPLOYMENTS, deployment(replicas=4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}))
    rs_controller, deploy_controller, agent = controllers(api)
    armed = False

    def bounds(pods):
        if not armed:
            return None
        alive = [p for p in pods if not is_terminating(p)]
        available = [p for p in alive if is_ready(p)]
        if len(alive) > 5:
            return f"{len(alive)} pods exist, more than replicas + maxSurge"
        if len(available) < 3:
            return f"{len(available)} pods available, fewer than replicas - maxUnavailable"
        return None

    watcher = PodWatcher(api, bounds)
    async with running(rs_controller, deploy_controller, agent, watcher):
        await wait_for(lambda: rolled_out(api))
        armed = True
        await set_image(api, "nginx:1.26")
        d = await wait_for(lambda: _rolled_out_at(api, generation=2))
        old, new = await replica_sets(api)
    assert watcher.violations == []
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
    assert new["metadata"]["annotations"][REVISION] == "2" and d["metadata"]["annotations"][REVISION] == "2"
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


async def test_recreate_stops_every_old_pod_before_starting_new_ones(api):
    await api.create(DEPLOYMENTS, deployment(replicas=3, strategy={"type": "Recreate"}))
    rs_controller, deploy_controller, agent = controllers(api)

    def one_version(pods):
        images = {p["spec"]["containers"][0]["image"] for p in pods
                  if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")}
        return f"old and new pods together: {images}" if len(images) > 1 else None

    watcher = PodWatcher(api, one_version)
    async with running(rs_controller, deploy_controller, agent, watcher):
        await wait_for(lambda: rolled_out(api))
        await set_image(api, "nginx:1.26")
        await wait_for(lambda: _rolled_out_at(api, generation=2))
    assert watcher.violations == []
    old, new = await replica_sets(api)
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 3


async def test_rollback_reuses_the_old_replica_set_with_a_new_revision(api):
    await api.create(DEPLOYMENTS, deployment())
    async with running(*controllers(api)):
        await wait_for(lambda: rolled_out(api))
        await set_image(api, "nginx:1.26")
        await wait_for(lambda: _rolled_out_at(api, generation=2))
        first, _second = await replica_sets(api)
        # What `kubectl rollout undo` sends: the old template, without its hash label,
        # re-encoded from Go structs (so with a null creationTimestamp).
        old_template = copy.deepcopy(first["spec"]["template"])
        del old_template["metadata"]["labels"][POD_TEMPLATE_HASH]
        old_template["metadata"]["creationTimestamp"] = None
        await api.patch(DEPLOYMENTS, "web", [{"op": "replace", "path": "/spec/template", "value": old_template}],
                        "json", namespace="default")
        d = await wait_for(lambda: _rolled_out_at(api, generation=3))
        sets = await replica_sets(api)
    assert len(sets) == 2  # no third ReplicaSet: the first one is the new one again
    second, reused = sets
    assert reused["metadata"]["uid"] == first["metadata"]["uid"] and reused["spec"]["replicas"] == 3
    assert reused["metadata"]["annotations"][REVISION] == "3"
    assert reused["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert second["spec"]["replicas"] == 0 and d["metadata"]["annotations"][REVISION] == "3"


async def test_revision_history_limit_prunes_old_replica_sets(api):
    await api.create(DEPLOYMENTS, deployment(replicas=1, revisionHistoryLimit=1))
    async with running(*controllers(api)):
        for generation, image in enumerate(("nginx:1", "nginx:2", "nginx:3"), start=1):
            if generation > 1:
                await set_image(api, image)
            await wait_for(lambda g=generation: _rolled_out_at(api, generation=g))
        sets = await wait_for(lambda: _count(replica_sets(api), 2))
    assert [rs["metadata"]["annotations"][REVISION] for rs in sets] == ["2", "3"]


async def test_paused_deployments_resize_but_do_not_roll_out(api):
    await api.create(DEPLOYMENTS, deployment(replicas=2))
    async with running(*controllers(api)):
        await wait_for(lambda: rolled_out(api))
        await api.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, namespace="default")
        await wait_for(lambda: _condition_reason(api, "DeploymentPaused"))
        await set_image(api, "nginx:1.26")
        await api.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 4}}, namespace="default")
        d = await wait_for(lambda: _observed(api, generation=4, replicas=4))
        [rs] = await replica_sets(api)  # resized, but no new ReplicaSet while paused
        assert rs["spec"]["replicas"] == 4 and conditions(d)["Progressing"] == ("Unknown", "DeploymentPaused")

        await api.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, namespace="default")
        await wait_for(lambda: _rolled_out_at(api, generation=5))
        old, new = await replica_sets(api)
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4


async def test_a_stuck_rollout_exceeds_its_progress_deadline(api):
    await api.create(DEPLOYMENTS, deployment(replicas=1, progressDeadlineSeconds=1))
    rs_controller, deploy_controller, agent = controllers(api)
    agent.hold = lambda pod: pod["spec"]["containers"][0]["image"] == "nginx:broken"
    async with running(rs_controller, deploy_controller, agent):
        await wait_for(lambda: rolled_out(api))
        await set_image(api, "nginx:broken")
        d = await wait_for(lambda: _condition_reason(api, "ProgressDeadlineExceeded"), timeout=8)
        assert conditions(d)["Progressing"][0] == "False"
        assert conditions(d)["Available"] == ("True", "MinimumReplicasAvailable")  # the old pod still serves
        old, new = await replica_sets(api)
        assert old["spec"]["replicas"] == 1 and new["spec"]["replicas"] == 1  # maxSurge 1, maxUnavailable 0


async def test_an_orphan_replica_set_with_the_same_template_is_adopted(api):
    d = deployment(replicas=2)
    pod_hash = template_hash(copy.deepcopy((await _defaulted(api, d))["spec"]["template"]))
    labels = {"app": "web", POD_TEMPLATE_HASH: pod_hash}
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "handmade", "namespace": "default", "labels": labels},
              "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                       "template": {**template(labels, "nginx:1.25")}}}
    await api.create(RS, orphan)
    created = await api.create(DEPLOYMENTS, d)
    async with running(*controllers(api)):
        await wait_for(lambda: rolled_out(api))
        [rs] = await replica_sets(api)
    assert rs["metadata"]["name"] == "handmade" and controller_ref(rs)["uid"] == created["metadata"]["uid"]
    assert rs["metadata"]["annotations"][REVISION] == "1"


async def test_proportional_scaling_during_a_rollout(api):
    await api.create(DEPLOYMENTS, deployment(replicas=10, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    rs_controller, deploy_controller, agent = controllers(api)
    async with running(rs_controller, deploy_controller, agent):
        await wait_for(lambda: rolled_out(api))
        agent.hold = lambda pod: pod["spec"]["containers"][0]["image"] == "nginx:new"  # the rollout stalls
        await set_image(api, "nginx:new")
        await wait_for(lambda: _sizes(api, [8, 5]))  # 10 + 3 surge; 8 of 10 available
        await api.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 15}}, namespace="default")
        # 18 allowed now: the 5 extra go 3 to the old and 2 to the new ReplicaSet, by their sizes
        await wait_for(lambda: _sizes(api, [11, 7]))


# -- helpers ---------------------------------------------------------------------


async def _defaulted(api, obj):
    created = await api.create(DEPLOYMENTS, {**obj, "metadata": {**obj["metadata"], "name": "probe"}})
    await api.delete(DEPLOYMENTS, "probe", "default")
    return created


async def _rolled_out_at(api, generation: int):
    d = await rolled_out(api)
    return d if d is not None and d["metadata"]["generation"] == generation else None


async def _observed(api, generation: int, replicas: int):
    d = await api.get(DEPLOYMENTS, "web", "default")
    status = d.get("status") or {}
    ok = status.get("observedGeneration") == generation and status.get("availableReplicas") == replicas
    return d if ok else None


async def _condition_reason(api, reason: str):
    d = await api.get(DEPLOYMENTS, "web", "default")
    return d if conditions(d).get("Progressing", ("", ""))[1] == reason else None


async def _count(sets_coro, count: int):
    sets = await sets_coro
    return sets if len(sets) == count else None


async def _sizes(api, sizes: list[int]):
    sets = await replica_sets(api)
    return sets if [rs["spec"]["replicas"] for rs in sets] == sizes else None
