"""The dashboard's UI without a cluster: the ':' commands, the help table against the bindings,
the table's diffing (cursor follows its object), logs, and dialogs, on a fixed Store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nodeos.tui.app import DashboardApp
from nodeos.tui.browser import ResourceScreen
from nodeos.tui.commands import Quit, SetNamespace, ShowView, ShowViewIn, Unknown, parse_command
from nodeos.tui.data.store import Store
from nodeos.tui.dialogs import ConfirmScreen
from nodeos.tui.help import KEYS
from nodeos.tui.logs import LogsScreen
from tests.tui_objects import NOW, RecordingFeed, fixed_store, pod


def run(scenario: Callable[[DashboardApp, object, ResourceScreen], Awaitable[None]], store: Store | None = None,
        feed: RecordingFeed | None = None, **kwargs: object) -> DashboardApp:
    app = DashboardApp(feed or RecordingFeed(), store or fixed_store(), now=lambda: NOW, **kwargs)

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await scenario(app, pilot, app.screen)  # type: ignore[arg-type]
    asyncio.run(main())
    return app


def test_commands() -> None:
    assert parse_command("po") == ShowView("pods")
    assert parse_command(":deploy") == ShowView("deployments")
    assert parse_command("no") == ShowView("nodes")
    assert parse_command("ns") == ShowView("namespaces")
    assert parse_command("ns shop") == SetNamespace("shop")
    assert parse_command("ns all") == SetNamespace(None)
    assert parse_command("po kube-system") == ShowViewIn("pods", "kube-system")
    assert parse_command("q") == Quit()
    assert isinstance(parse_command("bogus"), Unknown)


def test_every_key_in_help_is_bound() -> None:
    bound = {b.key for b in ResourceScreen.BINDINGS} | {k for b in ResourceScreen.BINDINGS for k in b.key.split(",")}
    bound |= {b.key for b in LogsScreen.BINDINGS}
    aliases = {":": "colon", "/": "slash", "?": "question_mark"}
    for section, key, _ in KEYS:
        if section in ("Views", "Pods", "Deployments", "Nodes") and len(key) == 1 and key.isalnum():
            assert aliases.get(key, key) in bound or key in "NASR", key
        if section == "Logs" and key.isalpha() and len(key) == 1:
            assert key in bound, key


def test_cursor_follows_its_pod_when_rows_arrive_above() -> None:
    store = fixed_store()

    async def scenario(app, pilot, screen) -> None:
        await pilot.press("ctrl+end")
        assert screen.table.current_key == "shop/web-3"
        row = screen.table.cursor_row
        for name in ("aaa", "aab", "aac"):
            store.put("Pod", pod(name))
        await pilot.pause(0.3)
        assert screen.table.current_key == "shop/web-3"
        assert screen.table.cursor_row == row + 3
        store.remove("Pod", "shop/aaa")
        await pilot.pause(0.3)
        assert screen.table.current_key == "shop/web-3"
        assert screen.table.keys[0] == "shop/aab"
    run(scenario, store)


def test_a_changed_pod_repaints_its_line_only() -> None:
    store = fixed_store()

    async def scenario(app, pilot, screen) -> None:
        updates = []
        original = screen.table.refresh_row
        screen.table.refresh_row = lambda key: (updates.append(key), original(key))
        store.put("Pod", pod("web-1", waiting="CrashLoopBackOff", restarts=3, ip="10.244.1.5"))
        await pilot.pause(0.3)
        assert screen.table.cells("shop/web-1")[3] == "CrashLoopBackOff"
        assert set(updates) == {"shop/web-1"}
        assert app.ticks and all(seconds < 1.0 for _, seconds in app.ticks)  # timed, for the benchmark
    run(scenario, store)


def test_cursor_keys_page_and_scroll_sideways() -> None:
    store = fixed_store()
    for index in range(60):
        store.put("Pod", pod(f"many-{index:02d}"))

    async def scenario(app, pilot, screen) -> None:
        table = screen.table
        page = table.scrollable_content_region.height - 1  # the header takes a line
        await pilot.press("pagedown")
        assert table.cursor_row == page and table.scroll_y > 0
        await pilot.press("end")
        assert table.current_key == table.keys[-1]
        await pilot.press("home", "down")
        assert table.cursor_row == 1 and table.scroll_y == 0
        await pilot.press("right")
        assert table.scroll_x > 0  # pods are wider than 80 columns
        lines = dict(table._lines)
        store.put("Pod", pod("many-03", waiting="CrashLoopBackOff"))
        await pilot.pause(0.3)
        redrawn = {key for key, line in table._lines.items() if lines.get(key) is not line}
        assert redrawn == {"shop/many-03"}  # every other line on screen came from the cache
    run(scenario, store)


def test_logs_are_shown_in_batches_and_bounded() -> None:
    feed = RecordingFeed(log_lines=tuple(f"line {i}" for i in range(7000)))

    async def scenario(app, pilot, screen) -> None:
        await pilot.press("end", "l")
        await pilot.pause(0.3)
        log = app.screen.query_one("Log")
        assert len(log.lines) == 5000 and log.lines[-1] == "line 6999"
        assert "end of log" in str(app.screen.query_one("#state").render())
    run(scenario, feed=feed)


def test_delete_asks_then_calls_the_feed() -> None:
    feed = RecordingFeed()

    async def scenario(app, pilot, screen) -> None:
        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert feed.calls == []
        await pilot.press("ctrl+d", "tab", "enter")  # focus moves from No to Yes; enter presses it
        await pilot.pause(0.2)
        assert len(feed.calls) == 1
    run(scenario, feed=feed)


def test_keys_typed_ahead_of_the_prompt_go_into_it() -> None:
    # Over SSH ":no" and Enter arrive in one read: all four keys are queued before the prompt opens.
    from textual import events

    async def scenario(app, pilot, screen) -> None:
        for key, character in [("colon", ":"), ("n", "n"), ("o", "o"), ("enter", "\r")]:
            app.post_message(events.Key(key, character))
        await pilot.pause(0.3)
        assert screen.view == "nodes"
        for key, character in [("slash", "/"), ("w", "w"), ("o", "o"), ("r", "r"), ("enter", "\r")]:
            app.post_message(events.Key(key, character))
        await pilot.pause(0.3)
        assert screen.filter == "wor" and screen.view == "nodes"

    run(scenario)


def test_the_prompt_takes_the_key_hints_line_and_nothing_is_rebuilt():
    from nodeos.tui.keyhints import KeyHints

    async def scenario(app, pilot, screen) -> None:
        hints = screen.query_one(KeyHints)
        height, rebuilds = screen.table.size.height, hints.rebuilds
        await pilot.press("slash")
        assert not hints.display and screen.query_one("#promptbar").display
        assert screen.table.size.height == height  # no row less: nothing to re-show
        await pilot.press("w", "e", "escape")
        await pilot.pause(0.1)
        assert hints.display and not screen.query_one("#promptbar").display
        assert screen.table.size.height == height and screen.filter == ""
        assert hints.rebuilds == rebuilds  # the same keys: Textual's Footer would have rebuilt twice
        await pilot.press("2")  # nodes: other keys (cordon, drain...)
        await pilot.pause(0.1)
        assert hints.rebuilds == rebuilds + 1
    run(scenario)


def test_cells_are_made_only_for_the_lines_drawn(monkeypatch):
    import nodeos.tui.table as table_module
    store = fixed_store()
    for index in range(2000):
        store.put("Pod", pod(f"many-{index:04d}"))
    made: list[str] = []
    real = table_module.cells_at
    monkeypatch.setattr(table_module, "cells_at", lambda row, now: (made.append(row.key), real(row, now))[1])

    async def scenario(app, pilot, screen) -> None:
        await pilot.pause(0.1)
        made.clear()
        await pilot.press("slash", "9", "escape")  # 2,000 rows out and back in
        await pilot.pause(0.1)
        assert len(screen.table.keys) > 2000
        assert 0 < len(made) < 3 * 24  # the lines on screen, not 2,000
    run(scenario, store)
