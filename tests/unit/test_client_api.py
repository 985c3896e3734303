import json
from contextlib import aclosing

import httpx
import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.client import ApiClient, ApiUnavailable, Connection
from nodeos.client.api import TABLE_ACCEPT, resource_path
from nodeos.errors import ApiError

PODS, DEPLOY, NODES = resolve("pods"), resolve("deployments"), resolve("nodes")


def client(handler, **conn) -> ApiClient:
    return ApiClient(Connection("http://api.test", **conn), transport=httpx.MockTransport(handler))


def test_resource_paths():
    assert resource_path(PODS, "ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert resource_path(PODS) == "/api/v1/pods"
    assert resource_path(DEPLOY, "a") == "/apis/apps/v1/namespaces/a/deployments"
    assert resource_path(NODES, "ignored", "n1") == "/api/v1/nodes/n1"


async def test_get_sends_token_and_defaults_to_connection_namespace():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"kind": "Pod", "metadata": {"name": "p"}})

    async with client(handler, token="tok", namespace="team") as api:
        assert (await api.get(PODS, "p"))["kind"] == "Pod"
    assert seen[0].url.path == "/api/v1/namespaces/team/pods/p"
    assert seen[0].headers["authorization"] == "Bearer tok"


async def test_status_error_becomes_api_error():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
              "message": 'pods "x" not found', "code": 404, "details": {"name": "x", "kind": "pods"}}
    async with client(lambda r: httpx.Response(404, json=status)) as api:
        with pytest.raises(ApiError) as info:
            await api.get(PODS, "x", "default")
    err = info.value
    assert (err.code, err.reason, err.message, err.details["name"]) == (404, "NotFound", 'pods "x" not found', "x")


async def test_non_status_error_uses_http_code():
    async with client(lambda r: httpx.Response(404, text="")) as api:
        with pytest.raises(ApiError) as info:
            await api.request("GET", "/nowhere")
    assert info.value.reason == "NotFound"
    assert info.value.message == "the server could not find the requested resource"


async def test_connection_refused_is_api_unavailable():
    def handler(request):
        raise httpx.ConnectError("[Errno 111] Connection refused")

    async with client(handler) as api:
        with pytest.raises(ApiUnavailable) as info:
            await api.list(PODS)
    assert info.value.refused
    assert info.value.server == "api.test"


async def test_create_update_status_patch_delete_bind_shapes():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"kind": "Status"})

    obj = {"metadata": {"name": "web", "namespace": "prod", "resourceVersion": "7"}}
    async with client(handler) as api:
        await api.create(DEPLOY, obj)
        await api.update(DEPLOY, obj)
        await api.update_status(DEPLOY, obj)
        await api.patch(DEPLOY, "web", {"spec": {"replicas": 2}}, "merge", "prod", "scale")
        await api.patch(DEPLOY, "web", [{"op": "remove", "path": "/x"}], "json")
        await api.delete(PODS, "p", "prod", propagation_policy="Foreground", grace_period_seconds=0)
        await api.bind("prod", "p", "node-1")
    got = [(r.method, r.url.path, r.headers.get("content-type")) for r in seen]
    assert got == [
        ("POST", "/apis/apps/v1/namespaces/prod/deployments", "application/json"),
        ("PUT", "/apis/apps/v1/namespaces/prod/deployments/web", "application/json"),
        ("PUT", "/apis/apps/v1/namespaces/prod/deployments/web/status", "application/json"),
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web/scale", "application/merge-patch+json"),
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", "application/json-patch+json"),
        ("DELETE", "/api/v1/namespaces/prod/pods/p", "application/json"),
        ("POST", "/api/v1/namespaces/prod/pods/p/binding", "application/json"),
    ]
    assert json.loads(seen[5].content) == {"kind": "DeleteOptions", "apiVersion": "v1",
                                           "propagationPolicy": "Foreground", "gracePeriodSeconds": 0}
    assert json.loads(seen[6].content)["target"] == {"apiVersion": "v1", "kind": "Node", "name": "node-1"}


async def test_list_all_follows_continue_and_table_accept():
    pages = {None: (["a", "b"], "t1"), "t1": (["c"], None)}
    seen = []

    def handler(request):
        seen.append(request)
        names, token = pages[request.url.params.get("continue")]
        meta = {"resourceVersion": "10", **({"continue": token} if token else {})}
        return httpx.Response(200, json={"kind": "PodList", "metadata": meta,
                                         "items": [{"metadata": {"name": n}} for n in names]})

    async with client(handler) as api:
        listed = await api.list_all(PODS, label_selector="app=web", page_size=2)
        await api.get_table(PODS, "default")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "b", "c"]
    assert listed["metadata"] == {"resourceVersion": "10"}
    assert seen[1].url.params["labelSelector"] == "app=web"
    assert seen[1].url.params["limit"] == "2"
    assert seen[2].headers["accept"] == TABLE_ACCEPT


def watch_handler(lines, seen=None):
    async def stream():
        for line in lines:
            yield line
            await trio.sleep(0)

    def handler(request):
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, stream=_Stream(stream()))
    return handler


class _Stream(httpx.AsyncByteStream):
    def __init__(self, gen):
        self.gen = gen

    async def __aiter__(self):
        async for chunk in self.gen:
            yield chunk

    async def aclose(self):
        await self.gen.aclose()


async def test_watch_reads_lines_incrementally_even_split_across_chunks():
    event = json.dumps({"type": "ADDED", "object": {"metadata": {"name": "a"}}}).encode()
    bookmark = b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}\n'
    seen = []
    handler = watch_handler([event[:10], event[10:] + b"\n", b"\n", bookmark], seen)
    async with client(handler) as api:
        events = [e async for e in api.watch(PODS, "ns", resource_version="5", timeout_seconds=60)]
    assert [t for t, _ in events] == ["ADDED", "BOOKMARK"]
    params = seen[0].url.params
    assert (params["watch"], params["resourceVersion"], params["allowWatchBookmarks"]) == ("true", "5", "true")
    assert seen[0].url.path == "/api/v1/namespaces/ns/pods"


async def test_watch_error_event_410_raises_api_error():
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}
    handler = watch_handler([json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"])
    async with client(handler) as api, aclosing(api.watch(PODS)) as events:
        with pytest.raises(ApiError) as info:
            async for _ in events:
                pass
    assert info.value.code == 410


async def test_watch_connection_lost_is_api_unavailable():
    async def broken():
        yield b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n'
        raise httpx.ReadError("connection reset")

    async with client(lambda r: httpx.Response(200, stream=_Stream(broken()))) as api:
        got = []
        with pytest.raises(ApiUnavailable):
            async for event in api.watch(PODS):
                got.append(event)
    assert len(got) == 1


async def test_leaving_a_watch_early_closes_the_stream_without_warnings():
    closed = trio.Event()

    async def endless():
        try:
            while True:
                yield b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n'
                await trio.sleep(0)
        finally:
            closed.set()

    api = client(lambda r: httpx.Response(200, stream=_Stream(endless())))
    async with api, aclosing(api.watch(PODS)) as events:
        async for _ in events:
            break
    assert closed.is_set()


def test_public_surface_is_small_and_headless():
    import subprocess
    import sys

    import nodeos.client

    assert sorted(nodeos.client.__all__) == ["ApiClient", "ApiObject", "ApiUnavailable", "Connection", "Informer",
                                             "WorkQueue", "load_connection", "object_key", "split_key"]
    code = ("import sys, nodeos.client; print(sorted(m for m in sys.modules"
            " if m.split('.')[:2] == ['nodeos', 'cli'] or m.startswith('textual')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
