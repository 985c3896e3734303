"""``nodeos dashboard`` as a person runs it over SSH: in a real terminal (tmux, 80x24), keys typed, screen read.

tmux gives the dashboard a pty of the classic size; ``capture-pane -p`` reads
back what a person would see, as text. Keys are sent one at a time with a
short pause, because a terminal cannot tell ``esc`` then ``l`` from alt+l.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path, workers=2) as c:
        yield c


class Tmux:
    def __init__(self, command: list[str]) -> None:
        self.name = f"nodeos-dash-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "80", "-y", "24", "-c", str(ROOT),
                        " ".join(command)], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], check=True,
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.15)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen within {timeout}s:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_dashboard_in_tmux_lists_nodes_and_quits(cluster: Cluster) -> None:
    tmux = Tmux([sys.executable, "-m", "nodeos", "dashboard", "--server", cluster.url])
    try:
        screen = tmux.wait_for("pods │ ns: all")
        assert "DISCONNECTED" not in screen
        tmux.keys(":", "n", "o", "Enter")
        screen = tmux.wait_for("worker-1")
        assert "nodes │" in screen and "worker-0" in screen and "Ready" in screen
        assert "nodes 2/2 ready" in screen
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        tmux.keys("?")
        tmux.wait_for("Help")
        tmux.keys("Escape")
        time.sleep(0.3)
        tmux.keys(":", "q", "Enter")
        deadline = time.monotonic() + 10
        while tmux.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.alive(), "the dashboard did not quit on :q"
    finally:
        tmux.kill()
