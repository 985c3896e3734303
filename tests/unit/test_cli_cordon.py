"""``nodeos drain``: which pods it evicts, and how it waits out a refused eviction (429)."""

from __future__ import annotations

import json

import httpx
import pytest

from nodeos.api.kinds import by_plural
from nodeos.cli import cordon
from nodeos.cli.common import CliError
from nodeos.client.testing import FakeApi
from nodeos.errors import ApiError

PODS = by_plural("", "v1", "pods")
NODES = by_plural("", "v1", "nodes")


def pod(name: str, node: str = "n1", owner: str | None = None, phase: str = "Running") -> dict:
    refs = [{"kind": owner, "name": "x", "uid": "u", "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": "default", "ownerReferences": refs},
            "spec": {"nodeName": node}, "status": {"phase": phase}}


@pytest.fixture
def fake():
    fake = FakeApi()
    fake.put(NODES, {"metadata": {"name": "n1"}, "spec": {}})
    for obj in (pod("web"), pod("ds", owner="DaemonSet"), pod("done", phase="Succeeded"), pod("other", node="n2")):
        fake.put(PODS, obj)
    return fake


async def test_daemonset_pods_stop_the_drain_unless_ignored(fake, capsys):
    async with fake.client() as api:
        with pytest.raises(CliError, match=r"cannot delete DaemonSet-managed Pods .*: default/ds$"):
            await cordon.pods_to_evict(api, "n1", ignore_daemonsets=False)
        chosen = await cordon.pods_to_evict(api, "n1", ignore_daemonsets=True)
    assert [p["metadata"]["name"] for p in chosen] == ["web"]  # not the finished one, nor the other node's
    assert capsys.readouterr().err == "Warning: ignoring DaemonSet-managed Pods: default/ds\n"


async def test_a_refused_eviction_is_retried_until_it_is_allowed(fake, monkeypatch, capsys):
    monkeypatch.setattr(cordon, "RETRY_SECONDS", 0.01)
    refusals = []

    def budget(request: httpx.Request) -> httpx.Response | None:
        if not request.url.path.endswith("/eviction"):
            return None
        if len(refusals) < 2:
            refusals.append(request)
            return httpx.Response(429, json={"kind": "Status", "status": "Failure", "reason": "TooManyRequests",
                                             "message": "Cannot evict pod as it would violate the pod's "
                                                        "disruption budget.", "code": 429})
        assert json.loads(request.content)["kind"] == "Eviction"
        fake.remove(PODS, "default", "web")
        return httpx.Response(201, json={"kind": "Status", "status": "Success"})

    fake.hook = budget
    async with fake.client() as api:
        await cordon.drain(api, "n1", ignore_daemonsets=True)
    assert len(refusals) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == ["node/n1 cordoned", "evicting pod default/web", "pod/web evicted", "node/n1 drained"]
    assert err.count("(will retry after 0.01s): Error from server (TooManyRequests): Cannot evict pod") == 2
    assert fake.objects[(NODES.store_prefix(), None, "n1")]["spec"]["unschedulable"] is True


async def test_other_refusals_end_the_drain(fake):
    fake.hook = lambda request: httpx.Response(403, json={"kind": "Status", "reason": "Forbidden", "code": 403,
                                                          "message": "no"}) \
        if request.url.path.endswith("/eviction") else None
    async with fake.client() as api:
        with pytest.raises(BaseExceptionGroup) as caught:  # the evictions run in a nursery
            await cordon.drain(api, "n1", ignore_daemonsets=True)
    (error,) = caught.value.exceptions
    assert isinstance(error, ApiError) and error.code == 403  # main() prints it as one line
