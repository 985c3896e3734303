"""The dashboard's feed against a real cluster: a master daemon and two simulated workers.

The feed runs its own trio thread, so these tests are plain synchronous
functions, as the Textual UI is to the feed: they read the Store, call
actions with ``feed.call`` and wait for the watches to bring the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from nodeos.client import load_connection
from nodeos.tui.data import actions
from nodeos.tui.data.actions import ActionError
from nodeos.tui.data.feed import Feed, LineBuffer
from nodeos.tui.data.query import Query, RowCaches
from nodeos.tui.data.store import Store
from tests.cluster import Cluster

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("tui-feed"), workers=2) as c:
        yield c


@pytest.fixture
def feed(cluster: Cluster) -> Iterator[Feed]:
    connection = load_connection(str(cluster.kubeconfig()))
    with Feed(connection, Store()) as f:
        wait(lambda: f.store.connected, 20, "the feed synced")
        yield f


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def web_pods(store: Store, running: bool = True) -> list[dict]:
    return [p for p in store.objects("Pod").values()
            if (p["metadata"].get("labels") or {}).get("app") == "web" and not p["metadata"].get("deletionTimestamp")
            and (not running or p.get("status", {}).get("phase") == "Running")]


def deployment(store: Store) -> dict:
    return store.get("Deployment", "default/web") or {}


def test_objects_and_changes_arrive(cluster: Cluster, feed: Feed):
    store = feed.store
    assert {"worker-0", "worker-1"} <= set(store.objects("Node"))
    assert "default" in store.objects("Namespace")
    httpx.post(f"{cluster.url}/apis/apps/v1/namespaces/default/deployments", json=DEPLOYMENT).raise_for_status()
    wait(lambda: len(web_pods(store)) == 2, 20, "two web pods Running")
    caches = RowCaches(store)
    rows = caches["pods"].select(Query.parse("pods", "default", "-l app=web"))
    assert [r.cells[3] for r in rows] == ["Running", "Running"] and all(r.cells[2] == "1/1" for r in rows)
    wait(lambda: caches.refresh() is not None and caches["deployments"].get("default/web").cells[2] == "2/2",
         20, "the deployment row says 2/2")
    nodes = {r.key: r for r in caches["nodes"].rows()}
    assert sum(int(nodes[n].cells[3]) for n in ("worker-0", "worker-1")) == 2


def test_actions(cluster: Cluster, feed: Feed):
    store = feed.store
    wait(lambda: len(web_pods(store)) == 2, 20, "two web pods Running")

    assert feed.call(actions.scale("deployments", "default", "web", 3)) == "deployment.apps/web scaled"
    wait(lambda: len(web_pods(store)) == 3, 20, "three web pods after scaling")

    assert feed.call(actions.cordon("worker-0")) == "node/worker-0 cordoned"
    wait(lambda: store.get("Node", "worker-0")["spec"].get("unschedulable"), 10, "worker-0 cordoned")
    assert feed.call(actions.uncordon("worker-0")) == "node/worker-0 uncordoned"
    wait(lambda: not store.get("Node", "worker-0")["spec"].get("unschedulable"), 10, "worker-0 uncordoned")

    victim = web_pods(store)[0]["metadata"]["name"]
    assert feed.call(actions.delete_pod("default", victim)) == f'pod "{victim}" deleted'
    wait(lambda: store.get("Pod", f"default/{victim}") is None and len(web_pods(store)) == 3, 30,
         "the deleted pod replaced")
    with pytest.raises(ActionError, match=r'Error from server \(NotFound\): pods "nope" not found'):
        feed.call(actions.delete_pod("default", "nope"))

    before = set(store.objects("ReplicaSet"))
    assert feed.call(actions.rollout_restart("default", "web")) == "deployment.apps/web restarted"
    wait(lambda: set(store.objects("ReplicaSet")) - before, 20, "a new ReplicaSet for the restart")
    template = deployment(store)["spec"]["template"]["metadata"]
    assert actions.RESTARTED_AT in template.get("annotations", {})
    wait(lambda: deployment(store).get("metadata", {}).get("annotations", {}).get(actions.REVISION) == "2", 20,
         "revision 2")

    assert feed.call(actions.rollout_undo("default", "web")) == "deployment.apps/web rolled back"
    wait(lambda: actions.RESTARTED_AT not in (deployment(store)["spec"]["template"]["metadata"]
                                              .get("annotations") or {}), 20, "the template of revision 1 back")
    wait(lambda: deployment(store)["metadata"].get("annotations", {}).get(actions.REVISION) == "3", 20,
         "revision 3")

    wait(lambda: len(web_pods(store)) == 3, 30, "three web pods after the undo")
    on_node = [p for p in web_pods(store) if p["spec"].get("nodeName") == "worker-1"]
    message = feed.call(actions.drain("worker-1"))
    assert message.startswith("node/worker-1 drained")
    wait(lambda: store.get("Node", "worker-1")["spec"].get("unschedulable"), 10, "worker-1 cordoned")
    wait(lambda: not [p for p in store.objects("Pod").values() if p["spec"].get("nodeName") == "worker-1"], 30,
         f"worker-1 emptied of {len(on_node)} pods")
    wait(lambda: len([p for p in web_pods(store) if p["spec"].get("nodeName") == "worker-0"]) == 3, 30,
         "the web pods on worker-0")
    feed.call(actions.uncordon("worker-1"))


def test_logs_errors_are_action_errors(feed: Feed):
    pod = wait(lambda: web_pods(feed.store), 20, "a web pod")[0]["metadata"]["name"]
    with pytest.raises(ActionError) as caught:
        feed.call(actions.read_logs("default", pod))
    assert str(caught.value).startswith("Error from server")
    buffer = LineBuffer(limit=10)
    feed.follow(actions.logs("default", pod, follow=True), buffer)
    wait(lambda: buffer.done, 10, "the followed log ended")
    assert buffer.error == str(caught.value)
    with pytest.raises(ActionError, match="NotFound"):
        feed.call(actions.read_logs("default", "no-such-pod"))


def test_line_buffer_keeps_the_newest_lines():
    buffer = LineBuffer(limit=3)
    for i in range(5):
        buffer.add(f"line {i}")
    assert buffer.take() == (["line 2", "line 3", "line 4"], 2)
    assert buffer.take() == ([], 0)


def test_survives_an_api_restart(cluster: Cluster, feed: Feed):
    store = feed.store
    wait(lambda: deployment(store), 20, "the deployment")
    cluster.master.kill()
    wait(lambda: not store.connected, 15, "disconnected")
    assert store.error
    cluster.master.start()
    started = time.monotonic()
    wait(lambda: store.connected, 30, "connected again")
    print(f"reconnected {time.monotonic() - started:.1f}s after the API was back")
    feed.call(actions.scale("deployments", "default", "web", 1))
    wait(lambda: len(web_pods(store)) == 1 and deployment(store)["spec"]["replicas"] == 1, 30,
         "the scaled-down deployment seen after the restart")
    listed = httpx.get(f"{cluster.url}/api/v1/pods").json()["items"]
    assert set(store.objects("Pod")) == {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in listed} \
        or wait(lambda: set(store.objects("Pod")) == {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in httpx.get(f"{cluster.url}/api/v1/pods").json()["items"]}, 10, "the same pods as the API")
