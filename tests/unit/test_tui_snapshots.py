"""What the dashboard looks like, as SVG snapshots, at 80x24 and 160x48.

A fixed cluster (``tests.tui_objects``) and a fixed clock make every run draw
the same screen. Update after an intended change with
``pytest tests/unit/test_tui_snapshots.py --snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

import pytest

from nodeos.tui.app import DashboardApp
from tests.tui_objects import NOW, RecordingFeed, fixed_store

SMALL = (80, 24)
LARGE = (160, 48)


def app(*, connected: bool = True, readonly: bool = False) -> DashboardApp:
    return DashboardApp(RecordingFeed(), fixed_store(connected), readonly=readonly, server="https://master:6443",
                        now=lambda: NOW)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
@pytest.mark.parametrize("keys", [
    pytest.param([], id="pods"),
    pytest.param(["2"], id="nodes"),
    pytest.param(["3"], id="deployments"),
    pytest.param(["6"], id="services"),
    pytest.param(["7"], id="events"),
    pytest.param(["slash", *"web", "enter"], id="filtered"),
    pytest.param(["down", "down", "down", "down", "down", "enter"], id="describe"),
    pytest.param(["question_mark"], id="help"),
    pytest.param(["2", "down", "c"], id="confirm_cordon"),
])
def test_views(snap_compare, keys: list[str], size: tuple[int, int]) -> None:
    assert snap_compare(app(), press=keys, terminal_size=size)


def test_disconnected(snap_compare) -> None:
    assert snap_compare(app(connected=False), terminal_size=SMALL)


def test_readonly(snap_compare) -> None:
    assert snap_compare(app(readonly=True), press=["2", "c"], terminal_size=SMALL)
