"""The scheduling queue: FIFO, backoff 1 s doubling to 10 s, unschedulable until a change."""

from __future__ import annotations

import pytest
import trio

from nodeos.scheduler.queue import SchedulingQueue


async def pop_now(queue: SchedulingQueue) -> str | None:
    with trio.move_on_after(0.001):
        return await queue.pop()
    return None


async def test_pods_come_out_first_in_first_out_once_each() -> None:
    queue = SchedulingQueue()
    for key in ("a", "b", "a", "c"):
        queue.add(key)
    assert [await queue.pop() for _ in range(3)] == ["a", "b", "c"]
    assert await pop_now(queue) is None


async def test_backoff_doubles_up_to_ten_seconds(autojump_clock) -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    waits = []
    for _ in range(6):
        queue.failed("p", unschedulable=False)
        before = trio.current_time()
        assert await queue.pop() == "p"
        waits.append(round(trio.current_time() - before, 3))
    assert waits == [1, 2, 4, 8, 10, 10]


async def test_success_resets_the_backoff(autojump_clock) -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    queue.failed("p", unschedulable=False)
    await queue.pop()
    queue.done("p")
    assert queue.backoff_for("p") == 0
    queue.add("p")
    assert await pop_now(queue) == "p"


async def test_unschedulable_pods_wait_for_a_cluster_change(autojump_clock) -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    queue.failed("p", unschedulable=True)
    await trio.sleep(30)
    assert await pop_now(queue) is None  # its backoff is long over, but nothing changed
    assert queue.counts()["unschedulable"] == 1
    queue.move_all()
    assert await pop_now(queue) == "p"


async def test_a_change_during_backoff_waits_for_the_backoff(autojump_clock) -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    queue.failed("p", unschedulable=True)
    queue.move_all()
    assert queue.counts()["backoff"] == 1
    assert await pop_now(queue) is None
    start = trio.current_time()
    assert await queue.pop() == "p"
    assert trio.current_time() - start == pytest.approx(1.0, abs=0.01)


async def test_a_change_while_in_flight_is_not_missed(autojump_clock) -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    queue.move_all()  # e.g. a node joined while the pod was being filtered
    queue.failed("p", unschedulable=True)
    assert queue.counts()["unschedulable"] == 0 and queue.counts()["backoff"] == 1


async def test_an_update_in_flight_is_tried_again() -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    queue.add("p")
    assert await pop_now(queue) is None  # never handed out twice at once
    queue.done("p")
    assert await pop_now(queue) == "p"


async def test_deleted_pods_leave_every_part_of_the_queue(autojump_clock) -> None:
    queue = SchedulingQueue()
    for key in ("unschedulable", "flight"):
        queue.add(key)
    assert await queue.pop() == "unschedulable"
    queue.failed("unschedulable", unschedulable=True)
    assert await queue.pop() == "flight"
    queue.add("active")
    for key in ("active", "unschedulable", "flight"):
        queue.delete(key)
    queue.failed("flight", unschedulable=True)
    assert not any(key in queue for key in ("active", "unschedulable", "flight"))
    queue.move_all()
    assert await pop_now(queue) is None


async def test_long_unschedulable_pods_are_retried_anyway(autojump_clock) -> None:
    queue = SchedulingQueue(max_unschedulable=60)
    queue.add("p")
    await queue.pop()
    queue.failed("p", unschedulable=True)
    await trio.sleep(30)
    queue.flush_unschedulable()
    assert await pop_now(queue) is None
    await trio.sleep(31)
    queue.flush_unschedulable()
    assert await pop_now(queue) == "p"


async def test_a_waiting_pop_wakes_for_a_backoff_that_ends(autojump_clock) -> None:
    queue = SchedulingQueue()
    queue.add("p")
    await queue.pop()
    async with trio.open_nursery() as nursery:
        got = []

        async def consumer() -> None:
            got.append(await queue.pop())

        nursery.start_soon(consumer)
        await trio.sleep(0.5)
        queue.failed("p", unschedulable=False)  # due at now + 1 s, while the consumer is parked
    assert got == ["p"]
