"""Leader election on a real API server: one leader, takeover on release or expiry,
and a leader that cannot renew stops leading."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from nodeos.client import ApiClient
from nodeos.client.leaderelection import LEASES, _micro_time, lead

FAST = {"lease_duration": 1, "renew_deadline": 0.6, "retry_period": 0.1}


class Leaders:
    """Tracks which candidates are running their leader-only work, and checks there is never more than one."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.history: list[str] = []
        self.max_together = 0

    def work(self, identity: str):
        async def fn() -> None:
            self.running.add(identity)
            self.history.append(identity)
            self.max_together = max(self.max_together, len(self.running))
            try:
                await trio.sleep_forever()
            finally:
                self.running.discard(identity)
        return fn

    async def wait_for_leader(self, other_than: str | None = None, timeout: float = 5.0) -> str:
        with trio.fail_after(timeout):
            while len(self.running) != 1 or other_than in self.running:
                await trio.sleep(0.02)
        return next(iter(self.running))


async def candidate(api, identity: str, leaders: Leaders, durations=FAST, *,
                    task_status=trio.TASK_STATUS_IGNORED) -> None:
    with trio.CancelScope() as scope:
        task_status.started(scope)
        await lead(api, "ctl", identity, leaders.work(identity), **durations)


async def test_one_of_two_leads_and_a_release_hands_over_at_once(api):
    leaders = Leaders()
    slow_expiry = {"lease_duration": 5, "renew_deadline": 2, "retry_period": 0.1}
    async with trio.open_nursery() as nursery:
        scopes = {name: await nursery.start(candidate, api, name, leaders, slow_expiry) for name in ("a", "b")}
        first = await leaders.wait_for_leader()
        await trio.sleep(0.5)  # several renew periods: still exactly one
        assert leaders.running == {first}
        lease = await api.get(LEASES, "ctl", "kube-system")
        assert lease["spec"]["holderIdentity"] == first
        assert lease["spec"]["leaseTransitions"] == 0
        start = trio.current_time()
        scopes[first].cancel()
        second = await leaders.wait_for_leader(other_than=first)
        assert trio.current_time() - start < 2.5  # released: no waiting for the 5 s lease to expire
        lease = await api.get(LEASES, "ctl", "kube-system")
        assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == (second, 1)
        nursery.cancel_scope.cancel()
    assert leaders.max_together == 1
    released = await api.get(LEASES, "ctl", "kube-system")
    assert released["spec"]["holderIdentity"] == ""  # the last leader released it on cancellation too


async def test_an_unreleased_lease_is_taken_over_only_after_it_expires(api):
    now = trio.current_time()
    await api.create(LEASES, {"metadata": {"name": "ctl", "namespace": "kube-system"},
                              "spec": {"holderIdentity": "crashed", "leaseDurationSeconds": 1,
                                       "renewTime": _micro_time(), "leaseTransitions": 3}})
    leaders = Leaders()
    async with trio.open_nursery() as nursery:
        await nursery.start(candidate, api, "b", leaders)
        await leaders.wait_for_leader()
        waited = trio.current_time() - now
        nursery.cancel_scope.cancel()
    assert 0.9 <= waited < 3.0
    assert leaders.history == ["b"]


async def test_a_standby_takes_over_when_the_lease_runs_out_not_at_its_next_retry(api):
    """Tries at 0 s and 2 s see a live Lease; the next try is at its expiry (3 s), not at 4 s."""
    now = trio.current_time()
    await api.create(LEASES, {"metadata": {"name": "ctl", "namespace": "kube-system"},
                              "spec": {"holderIdentity": "killed", "leaseDurationSeconds": 3,
                                       "renewTime": _micro_time(), "leaseTransitions": 1}})
    leaders = Leaders()
    durations = {"lease_duration": 15, "renew_deadline": 2.5, "retry_period": 2}
    async with trio.open_nursery() as nursery:
        await nursery.start(candidate, api, "b", leaders, durations)
        await leaders.wait_for_leader(timeout=6)
        waited = trio.current_time() - now
        nursery.cancel_scope.cancel()
    assert 2.9 <= waited < 3.6


class Breakable(httpx.AsyncBaseTransport):
    """A transport that can be cut, as a network partition would."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.broken = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.broken:
            raise httpx.ConnectError("partitioned", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def partitionable_client(api: ApiClient):
    transport = Breakable()
    async with ApiClient(api.conn, transport=transport) as client:
        yield client, transport


async def test_a_leader_that_cannot_renew_stops_and_another_takes_over(api):
    leaders = Leaders()
    async with partitionable_client(api) as (cut_off, transport), trio.open_nursery() as nursery:
        await nursery.start(candidate, cut_off, "a", leaders)
        assert await leaders.wait_for_leader() == "a"
        await nursery.start(candidate, api, "b", leaders)
        transport.broken = True
        lost_at = trio.current_time()
        with trio.fail_after(2):
            while "a" in leaders.running:
                await trio.sleep(0.02)
        assert trio.current_time() - lost_at < 0.6 + 0.5  # within renew_deadline (+ slack for a loaded machine)
        assert await leaders.wait_for_leader() == "b"
        transport.broken = False
        await trio.sleep(0.5)
        assert leaders.running == {"b"}  # "a" is back, and stands by
        nursery.cancel_scope.cancel()
    assert leaders.max_together == 1


async def test_many_racing_candidates_never_lead_together(api):
    leaders = Leaders()
    async with trio.open_nursery() as nursery:
        scopes = [await nursery.start(candidate, api, f"c{i}", leaders) for i in range(5)]
        for _ in range(3):
            current = await leaders.wait_for_leader()
            scopes[int(current[1:])].cancel()
            await leaders.wait_for_leader(other_than=current)
        nursery.cancel_scope.cancel()
    assert leaders.max_together == 1
    assert len(set(leaders.history)) == 4


async def test_fn_returning_releases_and_returns(api):
    async def quick() -> None:
        await trio.sleep(0.05)

    with trio.fail_after(3):
        await lead(api, "ctl", "a", quick, **FAST)
    assert (await api.get(LEASES, "ctl", "kube-system"))["spec"]["holderIdentity"] == ""


async def test_durations_must_nest(api):
    async def never() -> None:
        raise AssertionError

    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        await lead(api, "ctl", "a", never, lease_duration=1, renew_deadline=2, retry_period=0.1)
