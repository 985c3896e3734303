"""The ReplicaSet and ReplicationController controllers against a real API server.

There is no node agent here: ``FakeAgent`` does its job (bind, then report
Running and Ready, and finish graceful deletions), exactly through the API
calls a real agent makes. The Deployment tests reuse it.
"""

from __future__ import annotations

import copy
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from nodeos.api.kinds import by_plural
from nodeos.client import Informer
from nodeos.controllers import replicaset, replicationcontroller
from nodeos.controllers.events import EVENTS, EventRecorder
from nodeos.controllers.ownership import controller_ref
from nodeos.controllers.pods import format_time, utcnow
from nodeos.errors import ApiError

PODS = by_plural("", "v1", "pods")
RS = replicaset.REPLICASETS
RC = replicationcontroller.REPLICATIONCONTROLLERS


def template(labels: dict[str, str], image: str = "busybox:1.36") -> dict[str, Any]:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def replica_set(name: str, replicas: int, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template(labels),
                     **spec}}


def ready_status(pod: dict[str, Any], since: str | None = None) -> dict[str, Any]:
    """What an agent reports for a running, ready pod."""
    moment = since or format_time(utcnow())
    image = pod["spec"]["containers"][0]["image"]
    return {"phase": "Running", "startTime": moment,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": moment}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": c["name"], "image": image, "ready": True, "started": True,
                                   "restartCount": 0, "state": {"running": {"startedAt": moment}}}
                                  for c in pod["spec"]["containers"]]}


async def mark_ready(api, pod: dict[str, Any], since: str | None = None) -> None:
    await api.update_status(PODS, {**pod, "status": ready_status(pod, since)})


class FakeAgent:
    """Plays every node agent: binds new pods to ``node``, makes them Running
    and Ready unless ``hold(pod)`` says not yet, and finishes deletions."""

    def __init__(self, api, node: str = "sim-node") -> None:
        self.api = api
        self.node = node
        self.hold = lambda pod: False
        self.informer = Informer(api, PODS, resync_period=None)
        self.informer.add_handlers(on_add=self._wake, on_update=lambda _o, n: self._wake(n))
        self._wakeup = trio.Event()

    def _wake(self, _pod: dict[str, Any]) -> None:
        self._wakeup.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.informer.run)
            task_status.started()
            while True:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                for pod in self.informer.list():
                    try:
                        await self._step(pod)
                    except ApiError as exc:
                        if exc.code not in (404, 409):
                            raise

    async def release(self) -> None:
        """Look again at held pods (after ``hold`` changed)."""
        self._wakeup.set()

    async def _step(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            await self.api.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0)
        elif not pod["spec"].get("nodeName"):
            await self.api.bind(meta["namespace"], meta["name"], self.node)
        elif (pod.get("status") or {}).get("phase") != "Running" and not self.hold(pod):
            await mark_ready(self.api, pod)


@asynccontextmanager
async def running(*components):
    """Run controllers (and agents) in a nursery for the block's duration."""
    async with trio.open_nursery() as nursery:
        for component in components:
            await nursery.start(component.run)
        yield nursery
        nursery.cancel_scope.cancel()


async def wait_for(check, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``check()`` (sync or async) until it returns something other than None or False."""
    with trio.fail_after(timeout):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result is not None and result is not False:
                return result
            await trio.sleep(interval)


async def pods_of(api, owner_name: str) -> list[dict[str, Any]]:
    items = (await api.list(PODS, "default"))["items"]
    return [p for p in items if (controller_ref(p) or {}).get("name") == owner_name]


def rs_controller(api) -> replicaset.ReplicaSetController:
    return replicaset.build(api, EventRecorder(api, "replicaset-controller"), config=None)


# -- creating, owning, scaling ----------------------------------------------------


async def test_creates_owned_pods_from_the_template(api):
    rs = await api.create(RS, replica_set("web", 3))
    async with running(rs_controller(api)):
        pods = await wait_for(lambda: _exactly(pods_of(api, "web"), 3))
        status = await wait_for(lambda: _status_when(api, RS, "web", replicas=3))
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-") and len(pod["metadata"]["name"]) == len("web-") + 5
        assert pod["metadata"]["labels"] == {"app": "web"}
        assert pod["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
        assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert status["observedGeneration"] == 1 and status["fullyLabeledReplicas"] == 3
    assert "readyReplicas" not in status  # nothing is ready without an agent
    events = (await api.list(EVENTS, "default"))["items"]
    created = [e for e in events if e["reason"] == "SuccessfulCreate"]
    assert len(created) == 3 and created[0]["source"]["component"] == "replicaset-controller"


async def test_ready_and_available_follow_the_pods(api):
    await api.create(RS, replica_set("web", 2, minReadySeconds=2))
    async with running(rs_controller(api)):
        pods = await wait_for(lambda: _exactly(pods_of(api, "web"), 2))
        for pod in pods:  # timestamps have whole seconds: ready since at most 1 s ago
            await mark_ready(api, pod)
        status = await wait_for(lambda: _status_when(api, RS, "web", readyReplicas=2))
        assert status.get("availableReplicas", 0) == 0  # ready, but not yet for minReadySeconds
        with trio.fail_after(3):  # the controller looks again by itself when the time has come
            await wait_for(lambda: _status_when(api, RS, "web", availableReplicas=2))


async def test_scale_down_deletes_the_cheapest_pods_first(api):
    await api.create(RS, replica_set("web", 4))
    async with running(rs_controller(api)):
        pods = await wait_for(lambda: _exactly(pods_of(api, "web"), 4))
        by_name = sorted(pods, key=lambda p: p["metadata"]["name"])
        old_ready, unready_bound, unbound, ready_restarted = by_name
        for pod in (old_ready, unready_bound, ready_restarted):
            await api.bind("default", pod["metadata"]["name"], "n1")
        await mark_ready(api, await _get(api, old_ready), since="2020-01-01T00:00:00Z")
        restarted = await _get(api, ready_restarted)
        status = ready_status(restarted, since="2020-01-01T00:00:00Z")
        status["containerStatuses"][0]["restartCount"] = 5
        await api.update_status(PODS, {**restarted, "status": status})

        await api.patch(RS, "web", {"spec": {"replicas": 3}}, namespace="default")
        await wait_for(lambda: _gone(api, unbound))  # unassigned goes first
        await api.patch(RS, "web", {"spec": {"replicas": 2}}, namespace="default")
        terminating = await wait_for(lambda: _terminating(api, unready_bound))  # then not ready
        assert terminating  # bound pods end gracefully: their agent finishes the deletion
        await api.patch(RS, "web", {"spec": {"replicas": 1}}, namespace="default")
        await wait_for(lambda: _terminating(api, ready_restarted))  # then more restarts
        remaining = [p for p in await pods_of(api, "web") if not p["metadata"].get("deletionTimestamp")]
        assert [p["metadata"]["name"] for p in remaining] == [old_ready["metadata"]["name"]]
        status = await wait_for(lambda: _status_when(api, RS, "web", replicas=1))
        assert status["readyReplicas"] == 1


async def test_terminating_pods_are_replaced_at_once(api):
    await api.create(RS, replica_set("web", 1))
    async with running(rs_controller(api)):
        [pod] = await wait_for(lambda: _exactly(pods_of(api, "web"), 1))
        await api.bind("default", pod["metadata"]["name"], "n1")
        await api.delete(PODS, pod["metadata"]["name"], "default")  # graceful: it lingers, terminating
        pods = await wait_for(lambda: _exactly(pods_of(api, "web"), 2))
        assert sum(1 for p in pods if p["metadata"].get("deletionTimestamp")) == 1


# -- adoption and release ----------------------------------------------------------


async def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(api):
    orphan = {"metadata": {"name": "stray", "namespace": "default", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    other = {**copy.deepcopy(orphan), "metadata": {"name": "other", "namespace": "default",
                                                   "labels": {"app": "db"}}}
    await api.create(PODS, orphan)
    await api.create(PODS, other)
    rs = await api.create(RS, replica_set("web", 2))
    async with running(rs_controller(api)):
        pods = await wait_for(lambda: _exactly(pods_of(api, "web"), 2))
        assert "stray" in {p["metadata"]["name"] for p in pods}  # adopted, so only one pod was created
        stray = await api.get(PODS, "stray", "default")
        assert controller_ref(stray)["uid"] == rs["metadata"]["uid"]
        assert controller_ref(await api.get(PODS, "other", "default")) is None

        await api.patch(PODS, "stray", {"metadata": {"labels": {"app": "retired"}}}, namespace="default")
        released = await wait_for(lambda: _released(api, "stray"))
        assert released["metadata"]["labels"] == {"app": "retired"}
        pods = await wait_for(lambda: _exactly(pods_of(api, "web"), 2))  # and it was replaced
        assert "stray" not in {p["metadata"]["name"] for p in pods}


async def test_pods_of_other_controllers_are_left_alone(api):
    theirs = {"metadata": {"name": "theirs", "namespace": "default", "labels": {"app": "web"},
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x",
                                                "uid": "someone-else", "controller": True}]},
              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await api.create(PODS, theirs)
    await api.create(RS, replica_set("web", 1))
    async with running(rs_controller(api)):
        await wait_for(lambda: _exactly(pods_of(api, "web"), 1))
        await wait_for(lambda: _status_when(api, RS, "web", replicas=1))
    assert controller_ref(await api.get(PODS, "theirs", "default"))["uid"] == "someone-else"


# -- expectations ----------------------------------------------------------------


class LaggingWatch:
    """The controller's API client, except that pod watch events are held back
    while ``gate`` is closed: a deterministic stale informer cache."""

    def __init__(self, api) -> None:
        self._api = api
        self.gate = trio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def watch(self, res, *args, **kwargs):
        async for event in self._api.watch(res, *args, **kwargs):
            if res is PODS:
                await self.gate.wait()
            yield event


async def test_expectations_stop_a_stale_cache_from_creating_twice(api):
    lagging = LaggingWatch(api)
    controller = replicaset.ReplicaSetController(lagging, EventRecorder(api, "test"))
    controller.workers = 0  # reconcile by hand, below
    await api.create(RS, replica_set("web", 3))
    async with running(controller):
        await wait_for(lambda: controller.owners.get("default/web"))
        await controller.reconcile("default/web")
        assert len(await pods_of(api, "web")) == 3
        assert controller.expectations.pending("default/web") == (3, 0)
        assert controller.index.owned_by(controller.owners.get("default/web")["metadata"]["uid"]) == []
        await _caught_up(api, controller)  # the ReplicaSet's own cache is not held back
        await controller.reconcile("default/web")  # the pod cache still shows no pods
        assert len(await pods_of(api, "web")) == 3
        lagging.gate.set()
        await wait_for(lambda: controller.expectations.satisfied("default/web"))
        await _caught_up(api, controller)
        await controller.reconcile("default/web")
        assert len(await pods_of(api, "web")) == 3


class RefusingCreates:
    """The controller's API client, except that pod creates are refused while
    ``refuse`` is set, as a quota or an admission check would refuse them."""

    def __init__(self, api) -> None:
        self._api = api
        self.refuse = True
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def create(self, res, obj, namespace=None):
        if res is PODS:
            self.attempts += 1
            if self.refuse:
                raise ApiError(403, "Forbidden", 'pods "web-" is forbidden: exceeded quota')
        return await self._api.create(res, obj, namespace)


async def test_refused_creates_fail_fast_say_why_and_recover(api):
    refusing = RefusingCreates(api)
    controller = replicaset.ReplicaSetController(refusing, EventRecorder(api, "test"))
    controller.workers = 0  # reconcile by hand, below
    await api.create(RS, replica_set("web", 5))
    async with running(controller):
        await wait_for(lambda: controller.owners.get("default/web"))
        with pytest.raises(ApiError, match="exceeded quota"):
            await controller.reconcile("default/web")
        assert refusing.attempts == 1  # slow start: the first batch of one failed, so no more were sent
        assert controller.expectations.satisfied("default/web")  # nothing is in flight
        failure = await _condition(api, "web", "ReplicaFailure")
        assert failure["reason"] == "FailedCreate" and "exceeded quota" in failure["message"]
        events = [e for e in (await api.list(EVENTS, "default"))["items"] if e["reason"] == "FailedCreate"]
        assert events and events[0]["type"] == "Warning"

        refusing.refuse = False
        await _caught_up(api, controller)
        await controller.reconcile("default/web")
        assert len(await pods_of(api, "web")) == 5 and refusing.attempts == 6
        await _caught_up(api, controller)
        uid = controller.owners.get("default/web")["metadata"]["uid"]
        await wait_for(lambda: len(controller.index.owned_by(uid)) == 5)
        await controller.reconcile("default/web")
        assert await _condition(api, "web", "ReplicaFailure") is None


# -- the legacy kind -------------------------------------------------------------


async def test_replication_controller_uses_the_same_logic(api):
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy", "namespace": "default"},
          "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": template({"app": "legacy"})}}
    created = await api.create(RC, rc)
    controller = replicationcontroller.build(api, EventRecorder(api, "test"), config=None)
    async with running(controller, FakeAgent(api)):
        pods = await wait_for(lambda: _exactly(pods_of(api, "legacy"), 2))
        assert controller_ref(pods[0]) == {"apiVersion": "v1", "kind": "ReplicationController", "name": "legacy",
                                           "uid": created["metadata"]["uid"], "controller": True,
                                           "blockOwnerDeletion": True}
        await wait_for(lambda: _status_when(api, RC, "legacy", readyReplicas=2, availableReplicas=2))
        await api.patch(RC, "legacy", {"spec": {"replicas": 0}}, namespace="default")
        await wait_for(lambda: _exactly(pods_of(api, "legacy"), 0))
        status = await wait_for(lambda: _status_when(api, RC, "legacy", replicas=0))
        assert status["observedGeneration"] == 2


# -- helpers -----------------------------------------------------------------------


async def _exactly(pods_coro, count: int):
    pods = await pods_coro
    return pods if len(pods) == count else None


async def _status_when(api, res, name: str, **expected: int):
    status = (await api.get(res, name, "default")).get("status") or {}
    return status if all(status.get(k, 0) == v for k, v in expected.items()) else None


async def _get(api, pod):
    return await api.get(PODS, pod["metadata"]["name"], "default")


async def _gone(api, pod) -> bool:
    try:
        await _get(api, pod)
    except ApiError as exc:
        return exc.code == 404
    return False


async def _terminating(api, pod) -> bool:
    try:
        return bool((await _get(api, pod))["metadata"].get("deletionTimestamp"))
    except ApiError:
        return True


async def _released(api, name: str):
    pod = await api.get(PODS, name, "default")
    return pod if controller_ref(pod) is None else None


async def _caught_up(api, controller) -> None:
    latest = (await api.get(RS, "web", "default"))["metadata"]["resourceVersion"]
    await wait_for(lambda: controller.owners.get("default/web")["metadata"]["resourceVersion"] == latest)


async def _condition(api, name: str, type_: str):
    status = (await api.get(RS, name, "default")).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


async def _no_condition(api, name: str, type_: str) -> bool:
    return await _condition(api, name, type_) is None
