"""Nothing acknowledged is lost: SIGKILL during a burst of creates, then restart."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from tests.daemon import Daemon

CLIENTS = 16


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


# Killing the server mid-request leaves httpx's request-body generators
# unfinished; that is the point of the test, not a leak.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_sigkill_during_creates_loses_nothing_acknowledged(fresh_daemon: Daemon):
    fresh_daemon.start()
    acked: dict[str, int] = {}
    url = f"{fresh_daemon.url}/api/v1/namespaces/default/pods"

    async def creator(client_id: int, client: httpx.AsyncClient) -> None:
        for i in range(100_000):
            name = f"c{client_id}-{i}"
            try:
                response = await client.post(url, json=pod(name))
            except httpx.HTTPError:
                return  # the daemon died under us: this create was never acknowledged
            if response.status_code == 201:
                acked[name] = int(response.json()["metadata"]["resourceVersion"])

    async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:
        for c in range(CLIENTS):
            nursery.start_soon(creator, c, client)
        while len(acked) < 300:
            await trio.sleep(0.05)
        fresh_daemon.kill()
    assert len(acked) >= 300

    fresh_daemon.start()
    async with httpx.AsyncClient(timeout=30) as client:
        listed = (await client.get(url)).json()
    stored = {p["metadata"]["name"]: int(p["metadata"]["resourceVersion"]) for p in listed["items"]}
    missing = sorted(set(acked) - set(stored))
    assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"
    assert all(stored[name] == rv for name, rv in acked.items())
    assert len(set(acked.values())) == len(acked)  # every create had its own revision


async def test_watch_resumed_after_restart_continues_or_gets_410(fresh_daemon: Daemon):
    fresh_daemon.start()
    url = f"{fresh_daemon.url}/api/v1/namespaces/default/pods"
    async with httpx.AsyncClient(timeout=10) as client:
        first = (await client.post(url, json=pod("before"))).json()
        last_seen = int(first["metadata"]["resourceVersion"])
        await client.post(url, json=pod("unseen"))  # a change the watcher never saw
    fresh_daemon.kill()
    fresh_daemon.start()
    async with httpx.AsyncClient(timeout=10) as client:
        await client.post(url, json=pod("after"))
        async with client.stream("GET", url, params={"watch": "true", "resourceVersion": str(last_seen),
                                                     "timeoutSeconds": "2"}) as response:
            lines = [json.loads(line) async for line in response.aiter_lines() if line]
    if response.status_code == 410:
        assert lines[0]["kind"] == "Status" and lines[0]["reason"] == "Expired"
        return
    if lines and lines[0]["type"] == "ERROR":
        assert lines[0]["object"]["code"] == 410
        return
    names = [e["object"]["metadata"]["name"] for e in lines]
    assert names[:2] == ["unseen", "after"], names  # no gap
