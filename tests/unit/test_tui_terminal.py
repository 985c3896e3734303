"""The dashboard's terminal input and garbage collection: Esc answered when its delay is over (not at
Textual's next 100 ms poll), a user's ESCDELAY kept, and full collections moved to when keys pause."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import pytest
from textual import constants, events

from nodeos.tui import collector as collector_module
from nodeos.tui.collector import Collector
from nodeos.tui.terminal import ESCAPE_DELAY_MS, POLL_SECONDS, EscapeDriver, poll_timeout, set_escape_delay


def test_poll_waits_until_the_escape_timer_and_no_longer():
    assert poll_timeout(None, 10.0) == POLL_SECONDS
    assert poll_timeout(10.03, 10.0) == pytest.approx(0.03)
    assert poll_timeout(9.9, 10.0) == 0.0  # overdue: look at once
    assert poll_timeout(11.0, 10.0) == POLL_SECONDS


def test_escape_delay_is_ours_unless_the_user_set_escdelay():
    saved = constants.ESCAPE_DELAY
    try:
        assert set_escape_delay({}) == ESCAPE_DELAY_MS / 1000
        constants.ESCAPE_DELAY = 0.3  # type: ignore[misc]  # what Textual read from ESCDELAY=300
        assert set_escape_delay({"ESCDELAY": "300"}) == 0.3
    finally:
        constants.ESCAPE_DELAY = saved  # type: ignore[misc]


class _Recording(EscapeDriver):
    """The driver reading a pipe instead of the terminal, noting each key and when it came."""

    def __init__(self, fileno: int) -> None:
        super().__init__(None, size=(80, 24))  # type: ignore[arg-type]  # no app: process_message is ours
        self.fileno = fileno
        self.keys: list[tuple[float, str]] = []
        self.got = threading.Event()

    def process_message(self, message: object) -> None:
        if isinstance(message, events.Key):
            self.keys.append((time.perf_counter(), message.key))
            self.got.set()


def _read_keys(data: list[bytes], gap: float = 0.0) -> tuple[list[tuple[float, str]], float]:
    """Run the driver's input loop on a pipe, write ``data`` (``gap`` apart); the keys and when writing ended."""
    async def main() -> tuple[list[tuple[float, str]], float]:
        read, write = os.pipe()
        driver = _Recording(read)
        thread = threading.Thread(target=driver.run_input_thread, daemon=True)
        thread.start()
        try:
            time.sleep(0.05)  # the loop is in its select
            for chunk in data:
                time.sleep(gap)
                os.write(write, chunk)
            written = time.perf_counter()
            driver.got.wait(2.0)
            time.sleep(0.02)
        finally:
            driver.exit_event.set()
            thread.join(2.0)
            os.close(write)
            os.close(read)
        return driver.keys, written
    return asyncio.run(main())


def test_a_lone_esc_arrives_after_the_escape_delay_not_at_the_next_poll():
    saved = constants.ESCAPE_DELAY
    constants.ESCAPE_DELAY = 0.01  # type: ignore[misc]
    try:
        keys, written = _read_keys([b"\x1b"])
    finally:
        constants.ESCAPE_DELAY = saved  # type: ignore[misc]
    assert [key for _, key in keys] == ["escape"]
    # Textual's own loop answers at its next 100 ms poll (100-200 ms); ours when the 10 ms are over.
    assert keys[0][0] - written < 0.08


def test_an_arrow_split_across_reads_within_the_delay_is_still_an_arrow():
    keys, _ = _read_keys([b"\x1b", b"[A"], gap=0.005)
    assert [key for _, key in keys] == ["up"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_full_collections_wait_for_keys_to_pause(monkeypatch):
    collected: list[int] = []
    monkeypatch.setattr(collector_module.gc, "collect", lambda *args: collected.append(1) or 0)
    clock = Clock()
    collector = Collector(clock)
    clock.now += collector_module.FULL_EVERY_SECONDS + 1
    collector.key_pressed()
    assert not collector.tick()  # due, but a key just came
    clock.now += collector_module.IDLE_SECONDS
    assert collector.tick() and collected == [1]
    assert not collector.tick()  # not due again yet
    for _ in range(int(collector_module.BACKSTOP_SECONDS)):  # keys every second, never a pause
        clock.now += 1
        collector.key_pressed()
        collector.tick()
    assert collected == [1, 1]  # the backstop


def test_automatic_full_collections_are_off_while_started_and_the_first_list_is_frozen(monkeypatch):
    frozen: list[int] = []
    monkeypatch.setattr(collector_module.gc, "freeze", lambda: frozen.append(1))
    before = gc.get_threshold()
    collector = Collector()
    collector.start()
    try:
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] == collector_module.NO_AUTOMATIC_FULL
        collector.freeze()
        collector.freeze()
        assert frozen == [1]
    finally:
        collector.stop()
    assert gc.get_threshold() == before
