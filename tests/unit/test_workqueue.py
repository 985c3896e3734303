import pytest
import trio
import trio.testing

from nodeos.client import WorkQueue
from nodeos.client.workqueue import ExponentialBackoff


async def test_adds_are_deduplicated_and_ordered():
    q = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_readded_while_processing_waits_for_done(autojump_clock):
    q = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker
    with trio.move_on_after(1) as scope:
        await q.get()
    assert scope.cancelled_caught
    q.done("a")
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_never_two_workers_on_one_key(autojump_clock):
    q = WorkQueue()
    active, overlaps, processed = set(), [], []

    async def worker():
        async for key in q:
            if key in active:
                overlaps.append(key)
            active.add(key)
            await trio.sleep(1)
            processed.append(key)
            active.discard(key)
            q.done(key)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(worker)
        for _ in range(5):
            for key in "xyz":
                q.add(key)
            await trio.sleep(0.3)
        await trio.sleep(10)
        q.shut_down()
    assert overlaps == []
    assert set(processed) == {"x", "y", "z"}
    assert len(processed) < 15  # re-adds while queued were merged


async def test_add_after_delays_and_keeps_the_earliest(autojump_clock):
    q = WorkQueue()
    start = trio.current_time()
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)
    q.add_after("b", 0)
    assert await q.get() == "b"
    assert await q.get() == "a"
    assert trio.current_time() - start == pytest.approx(5)
    q.done("a")
    with trio.move_on_after(100):
        await q.get()
        raise AssertionError("a was delivered twice")


async def test_waiting_getter_wakes_for_an_earlier_delayed_key(autojump_clock):
    q = WorkQueue()
    got = []

    async def worker():
        got.append((await q.get(), trio.current_time()))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        await trio.sleep(1)
        q.add_after("late", 100)
        q.add_after("soon", 2)
    assert got == [("soon", pytest.approx(start + 3))]


async def test_rate_limited_backoff_grows_caps_and_forgets(autojump_clock):
    q = WorkQueue(ExponentialBackoff(base=0.005, cap=1000))
    delays = []
    for _ in range(20):
        start = trio.current_time()
        q.add_rate_limited("k")
        assert await q.get() == "k"
        q.done("k")
        delays.append(round(trio.current_time() - start, 6))
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000
    assert q.num_requeues("k") == 20
    q.forget("k")
    assert q.num_requeues("k") == 0
    assert ExponentialBackoff(0.005, 1000).when("k") == 0.005


async def test_shut_down_drains_then_ends_and_ignores_adds(autojump_clock):
    q = WorkQueue()
    q.add("a")
    q.add_after("later", 5)
    q.shut_down()
    q.add("b")
    assert q.shutting_down
    assert await q.get() == "a"
    with pytest.raises(trio.EndOfChannel):
        await q.get()


async def test_shut_down_wakes_idle_workers():
    q = WorkQueue()
    finished = []

    async def worker():
        async for _ in q:
            pass
        finished.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        nursery.start_soon(worker)
        await trio.testing.wait_all_tasks_blocked()
        q.shut_down()
    assert finished == [True, True]
