"""Client-side failover between several API servers: which server is used, and what is sent again."""

from __future__ import annotations

import logging

import httpx
import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.client import ApiClient, ApiUnavailable, Connection, Informer
from nodeos.client.failover import Server, ServerList, resendable, switches_on_answer
from nodeos.client.testing import FakeApi
from nodeos.errors import ApiError

PODS = resolve("pods")
A, B, C = "http://a.test:8080", "http://b.test:8080", "http://c.test:8080"
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused")


def broken(request: httpx.Request) -> httpx.Response:
    # The request went out; the server died before it answered.
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"kind": "Status", "code": 503, "reason": "ServiceUnavailable",
                                     "message": "storage is down"})


class Hosts:
    """One API (a FakeApi, as if every server shared one store) behind several hosts, each of
    which a test can make fail in its own way; ``sent`` records which host got each request."""

    def __init__(self) -> None:
        self.api = FakeApi()
        self.failing: dict[str, object] = {}  # host -> handler answering instead of the API
        self.sent: list[tuple[str, str]] = []  # (host, method)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.removesuffix(".test")
        self.sent.append((host, request.method))
        if host in self.failing:
            return self.failing[host](request)
        return await self.api.handle(request)

    def client(self, *servers: str) -> ApiClient:
        return ApiClient(Connection(servers[0]), servers=servers, transport=httpx.MockTransport(self.handle))

    def take(self) -> list[tuple[str, str]]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def hosts() -> Hosts:
    return Hosts()


# -- the rules ----------------------------------------------------------------------------------

def test_which_answers_switch_servers():
    assert switches_on_answer(503, None) and switches_on_answer(503, 1)
    assert switches_on_answer(429, None)
    assert not switches_on_answer(429, 5)  # the server paces us: wait as asked, on the same server
    for code in (400, 404, 409, 410, 422, 500, 504):
        assert not switches_on_answer(code, None)


def test_what_may_be_sent_again():
    assert resendable("GET", unsent=False)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert resendable(method, unsent=True)
        assert not resendable(method, unsent=False)


def test_server_list_sticks_then_rotates_and_wraps(caplog):
    servers = ServerList([_server(url) for url in (A, B, C)])
    assert servers.current[0] == 0
    with caplog.at_level(logging.WARNING, logger="nodeos.client.failover"):
        servers.failed(0, "refused")
        servers.failed(0, "refused")  # a second request that saw the same failure: no second switch
        assert servers.current[0] == 1
        servers.failed(1, "reset")
        servers.failed(2, "reset")
    assert servers.current[0] == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"API server {A} failed (refused); switching to {B}",
        f"API server {B} failed (reset); switching to {C}",
        f"API server {C} failed (reset); switching to {A}",
    ]


def _server(url: str) -> Server:
    return Server(url, url.removeprefix("http://"), httpx.AsyncClient())


# -- requests -----------------------------------------------------------------------------------

async def test_a_read_goes_to_the_next_server_and_stays_there(hosts):
    hosts.api.put(PODS, dict(POD))
    hosts.failing["a"] = refused
    async with hosts.client(A, B) as api:
        assert (await api.get(PODS, "p"))["metadata"]["name"] == "p"
        assert api.server == B
        await api.list(PODS)
        hosts.failing.clear()  # a is back, but b works: no reason to move
        await api.get(PODS, "p")
    assert hosts.take() == [("a", "GET"), ("b", "GET"), ("b", "GET"), ("b", "GET")]


async def test_a_refused_write_is_sent_to_the_next_server(hosts):
    hosts.failing["a"] = refused
    async with hosts.client(A, B) as api:
        await api.create(PODS, dict(POD))
        assert hosts.take() == [("a", "POST"), ("b", "POST")]
        assert (await api.get(PODS, "p"))["metadata"]["name"] == "p"


async def test_a_write_with_unknown_outcome_is_not_sent_again(hosts):
    """A broken connection after sending: the write may have been applied, so the caller decides."""
    hosts.failing["a"] = broken
    async with hosts.client(A, B) as api:
        with pytest.raises(ApiUnavailable) as info:
            await api.create(PODS, dict(POD))
        assert not info.value.unsent and info.value.server == "a.test:8080"
        assert hosts.take() == [("a", "POST")]
        assert api.server == B  # but the next try goes elsewhere
        await api.create(PODS, dict(POD))
    assert hosts.take() == [("b", "POST")]


async def test_a_read_with_a_broken_connection_is_sent_again(hosts):
    hosts.failing["a"] = broken
    async with hosts.client(A, B) as api:
        await api.list(PODS)
    assert hosts.take() == [("a", "GET"), ("b", "GET")]


async def test_503_moves_reads_on_and_surfaces_for_writes(hosts):
    hosts.api.put(PODS, dict(POD))
    hosts.failing["a"] = unavailable
    async with hosts.client(A, B) as api:
        await api.get(PODS, "p")
        assert hosts.take() == [("a", "GET"), ("b", "GET")]
    async with hosts.client(A, B) as api:
        with pytest.raises(ApiError) as info:
            await api.patch(PODS, "p", {"metadata": {"labels": {"x": "1"}}})
        assert info.value.code == 503
        await api.patch(PODS, "p", {"metadata": {"labels": {"x": "1"}}})
    assert hosts.take() == [("a", "PATCH"), ("b", "PATCH")]


async def test_429_with_retry_after_stays_on_the_server(hosts):
    hosts.failing["a"] = lambda request: httpx.Response(429, headers={"Retry-After": "2"}, text="slow down")
    async with hosts.client(A, B) as api:
        with pytest.raises(ApiError) as info:
            await api.list(PODS)
        assert (info.value.code, info.value.retry_after) == (429, 2)
        assert api.server == A
    hosts.failing["a"] = lambda request: httpx.Response(429, text="overloaded")
    async with hosts.client(A, B) as api:
        await api.list(PODS)
        assert api.server == B


async def test_other_errors_neither_switch_nor_retry(hosts):
    async with hosts.client(A, B) as api:
        with pytest.raises(ApiError) as info:
            await api.get(PODS, "missing")
        assert info.value.code == 404
        assert api.server == A
    assert hosts.take() == [("a", "GET")]


async def test_every_server_down_raises_after_one_try_each(hosts):
    hosts.failing.update(a=refused, b=refused, c=refused)
    async with hosts.client(A, B, C) as api:
        with pytest.raises(ApiUnavailable) as info:
            await api.list(PODS)
        assert info.value.refused and info.value.unsent
        assert [host for host, _ in hosts.take()] == ["a", "b", "c"]
        hosts.failing.pop("b")
        await api.list(PODS)  # the next call starts where the last left off and goes round
    assert [host for host, _ in hosts.take()] == ["a", "b"]


async def test_concurrent_failures_switch_once(hosts, caplog):
    hosts.failing["a"] = broken
    async with hosts.client(A, B, C) as api:
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(api.list, PODS)
        assert api.server == B
    switches = [r for r in caplog.records if "switching" in r.getMessage()]
    assert len(switches) == 1


async def test_one_server_behaves_as_before(hosts):
    hosts.failing["a"] = refused
    async with hosts.client(A) as api:
        with pytest.raises(ApiUnavailable):
            await api.list(PODS)
        assert api.servers == (A,)
    assert hosts.take() == [("a", "GET")]


async def test_connect_timeout_is_short_only_with_somewhere_else_to_go():
    async with ApiClient(Connection(A), servers=[A, B]) as several, ApiClient(Connection(A)) as one:
        assert several._timeout.connect == 5.0
        assert one._timeout.connect == 30.0


# -- watches and informers ----------------------------------------------------------------------

async def test_a_watch_opens_on_the_next_server(hosts, autojump_clock):
    hosts.failing["a"] = refused
    async with hosts.client(A, B) as api:
        events = api.watch(PODS, resource_version="1", timeout_seconds=5)
        hosts.api.put(PODS, dict(POD))
        kind, obj = await events.__anext__()
        await events.aclose()
    assert (kind, obj["metadata"]["name"]) == ("ADDED", "p")
    assert hosts.take() == [("a", "GET"), ("b", "GET")]


async def test_an_informer_resumes_on_the_next_server_from_its_resource_version(hosts, autojump_clock):
    hosts.api.put(PODS, dict(POD))
    async with hosts.client(A, B) as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None)
        await nursery.start(informer.run)
        hosts.api.put(PODS, {**POD, "metadata": {"name": "q"}})
        await trio.sleep(5)
        seen = informer.resource_version
        # Server a dies: its watch breaks and it refuses new connections.
        hosts.failing["a"] = refused
        hosts.api.end_watches(httpx.ReadError("connection reset by peer"))
        hosts.api.put(PODS, {**POD, "metadata": {"name": "r"}})
        await trio.sleep(5)
        assert sorted(informer.keys()) == ["default/p", "default/q", "default/r"]
        nursery.cancel_scope.cancel()
    watches = [r for r in hosts.api.requests if r.url.params.get("watch") == "true"]
    assert [r.url.host for r in watches] == ["a.test", "b.test"]
    assert watches[1].url.params["resourceVersion"] == seen  # resumed, not relisted
    lists = [r for r in hosts.api.requests if "watch" not in r.url.params]
    assert len(lists) == 1


async def test_a_silent_watch_gives_up_sooner_with_somewhere_else_to_go(hosts, autojump_clock):
    """nodeos masters send a BOOKMARK every 10 s: with several servers, a minute of silence is a hung master."""
    async def read_timeout(api: ApiClient, **kwargs) -> float | None:
        events = api.watch(PODS, resource_version="1", **kwargs)
        hosts.api.put(PODS, dict(POD))
        await events.__anext__()
        await events.aclose()
        return hosts.api.requests[-1].extensions["timeout"]["read"]

    async with hosts.client(A, B) as several, hosts.client(A) as one:
        assert await read_timeout(several, timeout_seconds=300) == 60.0
        assert await read_timeout(several, timeout_seconds=300, allow_bookmarks=False) == 330.0
        assert await read_timeout(one, timeout_seconds=300) == 330.0


async def test_a_timeout_moves_reads_on_and_surfaces_for_writes(hosts):
    def hung(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    hosts.failing["a"] = hung
    async with hosts.client(A, B) as api:
        await api.list(PODS)
        assert hosts.take() == [("a", "GET"), ("b", "GET")]
    async with hosts.client(A, B) as api:
        with pytest.raises(ApiUnavailable) as info:
            await api.create(PODS, dict(POD))
        assert not info.value.unsent
        assert hosts.take() == [("a", "POST")]
        assert api.server == B


async def test_a_connect_timeout_counts_as_unsent(hosts):
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out")

    hosts.failing["a"] = unreachable
    async with hosts.client(A, B) as api:
        await api.create(PODS, dict(POD))
    assert hosts.take() == [("a", "POST"), ("b", "POST")]
