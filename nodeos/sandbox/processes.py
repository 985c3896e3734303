"""The hosts' daemons as detached processes, and finding whatever a sandbox left running.

A daemon runs as ``nsenter --net=/run/netns/HOST python -m nodeos daemon``
in a session of its own (so it outlives ``up``), logging to
DIR/<host>/daemon.log; its pid goes to DIR/<host>/daemon.pid. A pid is only
signalled while its command line still names the host's config, so a pid
reused by another process after a crash is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from nodeos.sandbox.hostconfig import host_env
from nodeos.sandbox.layout import Host
from nodeos.sandbox.system import in_netns, run

__all__ = ["daemon_pid", "how_it_ended", "kill_leftovers", "start_daemon", "stop_daemons"]

EXEC_WINDOW = 1.0  # seconds an empty command line is read again (an exec in progress), see daemon_pid
STOP_GRACE = 20.0  # SIGTERM to SIGKILL: the daemon stops its Podman service within 5 s, the rest is quick


def start_daemon(host: Host) -> int:
    """Start the host's daemon detached (a session of its own, output to its log); its pid.

    posix_spawn rather than Popen: nothing here waits for the daemon, and a
    Popen dropped while its process runs is a ResourceWarning in-process.
    """
    command = in_netns(host.netns, [sys.executable, "-m", "nodeos", "daemon", "--config", str(host.config)])
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, str(host.log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
    cwd = os.getcwd()
    try:
        os.chdir(host.dir)  # conmon and Podman leave files in their working directory
        pid = os.posix_spawnp(command[0], command, host_env(host), file_actions=actions, setsid=True)
    finally:
        os.chdir(cwd)
    host.pid_file.write_text(f"{pid}\n")
    return pid


def daemon_pid(host: Host) -> int | None:
    """The host's daemon's pid while it runs, else None.

    The pid must run with the host's config on its command line (a stale pid
    file may name a reused pid). Right after ``start_daemon`` the process is
    nsenter exec'ing Python, and during an exec the kernel shows an empty
    command line for a moment: that is read again, not taken for a death.
    """
    try:
        pid = int(host.pid_file.read_text())
    except (OSError, ValueError):
        return None
    deadline = time.monotonic() + EXEC_WINDOW
    while not (cmdline := _cmdline(pid)) and _state(pid) not in ("", "Z") and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid if str(host.config) in cmdline else None


def how_it_ended(host: Host) -> str:
    """How the host's exited daemon ended ("exit code 1", "killed by SIGKILL"), if this process started it and
    has not reaped it yet; else "". A silent death (an empty log) is then still explained."""
    try:
        pid = int(host.pid_file.read_text())
        done, status = os.waitpid(pid, os.WNOHANG)
    except (OSError, ValueError):  # no pid file, or not our child (ChildProcessError is an OSError)
        return ""
    if done == 0:
        return ""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def stop_daemons(hosts: list[Host], grace: float = STOP_GRACE) -> None:
    """SIGTERM every host's daemon at once, SIGKILL those still running after ``grace`` seconds."""
    pids = [pid for pid in map(daemon_pid, hosts) if pid is not None]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = [pid for pid in pids if _alive(pid)]
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    for host in hosts:
        host.pid_file.unlink(missing_ok=True)


def kill_leftovers(host: Host) -> list[int]:
    """SIGKILL what still runs in the host's namespace or from its directory (conmon, Podman); their pids."""
    pids = {int(p) for p in run(["ip", "netns", "pids", host.netns], check=False).stdout.split()}
    marker = str(host.dir) + "/"
    pids |= {pid for pid in _all_pids() if marker in _cmdline(pid)}
    pids.discard(os.getpid())
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    return sorted(pids)


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child (a test's in-process up)
    return Path(f"/proc/{pid}").exists() and _state(pid) != "Z"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
