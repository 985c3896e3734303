"""The dashboard as an operator drives it, at 80x24, keyboard only, against a real cluster.

A master daemon with two simulated workers, the real Feed (trio informers on
their thread) and the real DashboardApp under Textual's Pilot. pytest runs in
trio mode here and Textual is asyncio, so each test is a sync function that
runs its scenario with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from nodeos.client import Connection
from nodeos.tui.app import DashboardApp
from nodeos.tui.browser import ResourceScreen
from nodeos.tui.data.feed import Feed
from nodeos.tui.data.store import Store
from nodeos.tui.describe import DescribeScreen
from nodeos.tui.dialogs import ConfirmScreen, NumberScreen
from tests.cluster import Cluster

SIZE = (80, 24)


def deployment(name: str, replicas: int, namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}


def pod(name: str, image: str = "nginx:1.27", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "app", "image": image}], "restartPolicy": "Never"}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("dashboard"), workers=2) as c:
        post(c, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
        post(c, "/apis/apps/v1/namespaces/default/deployments", deployment("web", 3))
        post(c, "/api/v1/namespaces/default/pods", pod("broken", image="nodeos.invalid/fail"))
        post(c, "/api/v1/namespaces/shop/pods", pod("cart", namespace="shop"))
        yield c


def post(cluster: Cluster, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{cluster.url}{path}", json=body, timeout=5)
    assert response.status_code in (200, 201), response.text
    return response.json()


def get(cluster: Cluster, path: str) -> dict[str, Any]:
    response = httpx.get(f"{cluster.url}{path}", timeout=5)
    response.raise_for_status()
    return response.json()


@asynccontextmanager
async def dashboard(cluster: Cluster, *, readonly: bool = False):
    """A running app on a real Feed, synced; yields (app, pilot, screen)."""
    store = Store()
    feed = Feed(Connection(cluster.url), store, backoff_cap=0.5)
    await asyncio.to_thread(feed.start)
    try:
        app = DashboardApp(feed, store, readonly=readonly, server=cluster.url)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: store.connected, "the feed synced")
            screen = app.screen
            assert isinstance(screen, ResourceScreen)
            yield app, pilot, screen
    finally:
        await asyncio.to_thread(feed.stop)


async def until(pilot: Pilot, check: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def command(pilot: Pilot, text: str) -> None:
    await pilot.press("colon", *text, "enter")
    await pilot.pause()


def names(screen: ResourceScreen) -> list[str]:
    return [key.rpartition("/")[2] for key in screen.table.keys]


def messages(app: DashboardApp) -> list[str]:
    return [n.message for n in app._notifications]


async def select(pilot: Pilot, screen: ResourceScreen, name: str) -> None:
    """Put the cursor on the row named ``name`` (arrow keys, as a person would)."""
    await until(pilot, lambda: name in names(screen), f"{name} is listed")
    await pilot.press("home")
    for _ in range(len(names(screen))):
        if screen.table.current_key and screen.table.current_key.rpartition("/")[2] == name:
            return
        await pilot.press("down")
    raise AssertionError(f"{name} not reached: {names(screen)}")


# -- navigation -------------------------------------------------------------------------------------

def test_views_switch_by_command_and_number(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with dashboard(cluster) as (_app, pilot, screen):
            await until(pilot, lambda: "broken" in names(screen), "pods listed")
            await command(pilot, "no")
            assert screen.view == "nodes"
            await until(pilot, lambda: names(screen) == ["worker-0", "worker-1"], "the nodes listed")
            await pilot.press("3")
            assert screen.view == "deployments"
            await until(pilot, lambda: names(screen) == ["web"], "the deployment listed")
            for text, view in (("svc", "services"), ("ev", "events"), ("deploy", "deployments"), ("po", "pods")):
                await command(pilot, text)
                assert screen.view == view
            await pilot.press("2")
            assert screen.view == "nodes"
            await command(pilot, "nosuchview")
            assert screen.view == "nodes"
            assert any("nosuchview" in m for m in messages(_app))
    run(scenario)


def test_filter_namespace_and_sort(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with dashboard(cluster) as (_app, pilot, screen):
            await until(pilot, lambda: {"broken", "cart"} <= set(names(screen)), "pods of both namespaces")
            await pilot.press("slash", *"brok")
            assert names(screen) == ["broken"]
            await pilot.press("enter", "escape")
            assert "cart" in names(screen)
            await pilot.press("slash", *"-l app=web", "enter")
            await until(pilot, lambda: len(names(screen)) == 3 and all(n.startswith("web-") for n in names(screen)),
                        "the label filter")
            await pilot.press("escape")
            await command(pilot, "ns shop")
            assert names(screen) == ["cart"]
            await command(pilot, "ns all")
            assert len(names(screen)) >= 5
            by_name = names(screen)
            assert by_name == sorted(by_name)
            await pilot.press("O")  # reverse
            assert names(screen) == sorted(by_name, reverse=True)
            await pilot.press("S")  # by STATUS: the failed pod sorts apart from the running ones
            status = [screen.table.cells(key)[3] for key in screen.table.keys]
            assert status == sorted(status)
    run(scenario)


# -- finding trouble --------------------------------------------------------------------------------

def test_a_failed_pod_is_found_and_described_with_its_events(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with dashboard(cluster) as (app, pilot, screen):
            await pilot.press("slash", *"error", "enter")
            await until(pilot, lambda: names(screen) == ["broken"], "the failed pod, by its STATUS")
            assert screen.table.cells(screen.table.keys[0])[3] == "Error"
            await pilot.press("enter")
            assert isinstance(app.screen, DescribeScreen)
            text = await until(pilot, lambda: "Scheduled" in _described(app) and _described(app), "its events")
            assert "nodeos.invalid/fail" in text and "Conditions" in text
            await pilot.press("escape")
            assert app.screen is screen
    run(scenario)


def _described(app: DashboardApp) -> str:
    return str(app.screen.query_one("#text").render())


# -- actions ----------------------------------------------------------------------------------------

def test_scale_asks_and_cancelling_does_nothing(cluster: Cluster) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments/web"

    async def scenario() -> None:
        async with dashboard(cluster) as (app, pilot, screen):
            await command(pilot, "deploy")
            await select(pilot, screen, "web")
            await pilot.press("s")
            assert isinstance(app.screen, NumberScreen)
            await pilot.press("ctrl+a", "ctrl+k", "5", "enter")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            await pilot.pause(0.3)
            assert get(cluster, path)["spec"]["replicas"] == 3
            await pilot.press("s", "ctrl+a", "ctrl+k", "5", "enter", "y")
            await until(pilot, lambda: get(cluster, path)["spec"]["replicas"] == 5, "scaled to 5")
            await until(pilot, lambda: any("scaled" in m for m in messages(app)), "the status line says so")
            await until(pilot, lambda: screen.table.cells("default/web")[2].endswith("/5"), "READY x/5")
    run(scenario)


def test_cordon_a_node(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with dashboard(cluster) as (_app, pilot, screen):
            await command(pilot, "no")
            await select(pilot, screen, "worker-1")
            await pilot.press("c", "y")
            await until(pilot, lambda: get(cluster, "/api/v1/nodes/worker-1")["spec"].get("unschedulable"),
                        "worker-1 cordoned")
            await until(pilot, lambda: "SchedulingDisabled" in screen.table.cells("worker-1")[1],
                        "the STATUS says so")
            await pilot.press("u", "y")
            await until(pilot, lambda: not get(cluster, "/api/v1/nodes/worker-1")["spec"].get("unschedulable"),
                        "worker-1 uncordoned")
    run(scenario)


def test_readonly_refuses_every_action(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with dashboard(cluster, readonly=True) as (app, pilot, screen):
            await command(pilot, "no")
            await select(pilot, screen, "worker-0")
            for key in ("c", "r", "u"):
                await pilot.press(key)
                assert app.screen is screen, key
            await command(pilot, "po")
            await select(pilot, screen, "broken")
            await pilot.press("ctrl+d")
            assert app.screen is screen
            assert sum("read-only" in m for m in messages(app)) == 4
            assert not get(cluster, "/api/v1/nodes/worker-0")["spec"].get("unschedulable")
    run(scenario)


# -- live -------------------------------------------------------------------------------------------

def test_the_cursor_stays_on_its_pod_as_rows_are_added_above(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with dashboard(cluster) as (_app, pilot, screen):
            await select(pilot, screen, "cart")
            before = screen.table.cursor_row
            for name in ("aa-1", "aa-2", "aa-3"):
                post(cluster, "/api/v1/namespaces/default/pods", pod(name))
            await until(pilot, lambda: "aa-3" in names(screen), "the new pods listed")
            assert screen.table.current_key == "shop/cart"
            assert screen.table.cursor_row == before + 3
    run(scenario)


def test_disconnected_while_the_master_is_down_then_recovers(tmp_path) -> None:
    with Cluster(tmp_path, workers=1) as cluster:
        async def scenario() -> None:
            async with dashboard(cluster) as (_app, pilot, screen):
                header = screen.query_one("#header")
                await until(pilot, lambda: "masters" in header._text and "DISCONNECTED" not in header._text
                            and "SYNCING" not in header._text, "connected")
                await asyncio.to_thread(cluster.master.stop)
                await until(pilot, lambda: "DISCONNECTED" in header._text, "the marker", timeout=20)
                await asyncio.to_thread(cluster.master.start)
                await until(pilot, lambda: "DISCONNECTED" not in header._text, "recovered", timeout=30)
                post(cluster, "/api/v1/namespaces/default/pods", pod("after"))
                await until(pilot, lambda: "after" in names(screen), "live again")
        run(scenario)
