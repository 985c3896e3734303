"""How a sandbox daemon that died at its start ended: said even when its log is empty."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from nodeos.sandbox.layout import Host
from nodeos.sandbox.processes import daemon_pid, how_it_ended


def _host(tmp_path, command: list[str]) -> tuple[Host, int]:
    host = Host(index=1, name="worker1", netns="none", veth="none", ip="127.0.0.1", dir=tmp_path)
    pid = os.posix_spawnp(command[0], command, dict(os.environ))
    host.pid_file.write_text(f"{pid}\n")
    return host, pid


def _wait_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return
        time.sleep(0.02)
    raise AssertionError(f"{pid} did not exit")


def test_an_exit_code_and_a_signal_are_told(tmp_path):
    host, pid = _host(tmp_path, ["sh", "-c", "exit 3"])
    _wait_dead(pid)
    assert how_it_ended(host) == "exit code 3"
    assert how_it_ended(host) == ""  # reaped: nothing more to tell

    host, pid = _host(tmp_path, ["sleep", "30"])
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    assert how_it_ended(host) == "killed by SIGKILL"


def test_nothing_is_told_of_a_running_daemon_or_a_missing_pid_file(tmp_path):
    assert how_it_ended(Host(1, "w", "n", "v", "127.0.0.1", tmp_path)) == ""
    host, pid = _host(tmp_path, ["sleep", "30"])
    try:
        assert how_it_ended(host) == ""
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_daemon_in_the_middle_of_its_exec_is_not_taken_for_dead(tmp_path):
    """nsenter exec'ing Python shows an empty command line for a moment: a check then must still find it."""
    host = Host(index=2, name="worker2", netns="none", veth="none", ip="127.0.0.1", dir=tmp_path)
    command = ["nsenter", "--net=/proc/self/ns/net", "--", sys.executable, "-c", "import time; time.sleep(1)",
               "--config", str(host.config)]
    for _ in range(10):
        pid = os.posix_spawnp(command[0], command, dict(os.environ))
        host.pid_file.write_text(f"{pid}\n")
        try:
            deadline = time.monotonic() + 0.05  # the exec happens within a few milliseconds of the spawn
            while time.monotonic() < deadline:
                assert daemon_pid(host) == pid
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
