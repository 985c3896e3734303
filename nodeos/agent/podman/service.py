"""Keeping a Podman API service answering on the agent's socket.

The agent needs ``podman system service`` on ``[podman] socket``. A host may
run one already (systemd's ``podman.socket``, or an operator's); then nodeos
uses it and only watches it. With ``manage = true`` and nothing answering,
nodeos runs its own, ``podman system service --time=0 unix://SOCKET``, and
restarts it when it dies, backing off 1 s doubling to 30 s (reset after a
minute up) so a Podman that cannot start does not spin. Containers survive
all this: conmon, not the service, holds them.

``run_podman_service`` reports started the first time the socket answers and
then runs until cancelled; on cancellation it stops the service it started
(SIGTERM, then SIGKILL) and leaves a foreign one alone. Podman's stderr goes
to the ``nodeos.podman`` log line by line, at the level Podman gave it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import trio

from nodeos.agent.podman.client import LibpodClient

__all__ = ["run_podman_service"]

log = logging.getLogger("nodeos.podman")

POLL = 1.0                # how often a foreign or missing service is pinged
START_POLL = 0.05         # how often a service being started is pinged
START_TIMEOUT = 60.0      # a service that does not answer by then is killed and retried
FIRST_BACKOFF, MAX_BACKOFF, HEALTHY_AFTER = 1.0, 30.0, 60.0
STOP_GRACE = 5.0          # SIGTERM to SIGKILL when stopping our service
FOREIGN_MISSES = 3        # pings a foreign service may miss before we count it gone

_LEVEL = re.compile(r'\blevel=(\w+)')
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "fatal": logging.CRITICAL, "panic": logging.CRITICAL}


async def run_podman_service(socket: Path, *, manage: bool, containers_conf: Path | None,
                             task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Make sure a libpod API service answers on ``socket``, for as long as this runs.

    Reports started once the socket answers, whoever serves it. Never returns.
    """
    socket = Path(socket)
    started = False

    def ready() -> None:
        nonlocal started
        if not started:
            started = True
            task_status.started()

    backoff = FIRST_BACKOFF
    async with LibpodClient(socket, timeout=10) as client:
        while True:
            if await client.ping():
                ready()
                await _watch_foreign(client)
            elif not manage:
                await _wait_until_answering(client)
            else:
                up_since = trio.current_time()
                await _run_once(client, socket, containers_conf, ready)
                if trio.current_time() - up_since >= HEALTHY_AFTER:
                    backoff = FIRST_BACKOFF
                log.warning("restarting the podman service in %.0f s", backoff)
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)


async def _watch_foreign(client: LibpodClient) -> None:
    """Return once a service we did not start has stopped answering."""
    log.info("using the podman service on %s", client.socket)
    misses = 0
    while misses < FOREIGN_MISSES:
        await trio.sleep(POLL)
        misses = 0 if await client.ping() else misses + 1
    log.warning("the podman service on %s stopped answering", client.socket)


async def _wait_until_answering(client: LibpodClient) -> None:
    """Poll a socket nobody serves yet (``manage = false``): someone else is to start Podman."""
    log.warning("podman is not answering on %s, and [podman] manage is off: waiting for it", client.socket)
    while not await client.ping():
        await trio.sleep(POLL)


async def _run_once(client: LibpodClient, socket: Path, containers_conf: Path | None,
                    ready: Callable[[], None]) -> None:
    """Run one ``podman system service`` until it dies (or cannot start); call ``ready`` once it answers."""
    try:
        proc = await _spawn(socket, containers_conf)
    except OSError as exc:
        log.error("cannot start the podman service: %s", exc)
        return
    log.info("started the podman service on %s (pid %d)", socket, proc.pid)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_log_stderr, proc)
        try:
            if await _answers_while_alive(client, proc):
                ready()
                await proc.wait()
        finally:
            with trio.CancelScope(shield=True):
                await _stop(proc)
        # stderr ends with the process; a grandchild holding it open must not hold us
        nursery.cancel_scope.deadline = trio.current_time() + 1.0
    log.warning("the podman service (pid %d) exited with status %s", proc.pid, proc.returncode)


async def _spawn(socket: Path, containers_conf: Path | None) -> trio.Process:
    podman = shutil.which("podman")
    if podman is None:
        raise FileNotFoundError("podman is not installed (not on PATH)")
    socket.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if containers_conf is not None:
        env["CONTAINERS_CONF"] = str(containers_conf)
    # cwd: conmon 2.1 drops an "oom" marker file in its working directory (inherited from the
    # service) when a container is OOM-killed; keep those out of wherever nodeos was started.
    return await trio.lowlevel.open_process([podman, "system", "service", "--time=0", f"unix://{socket}"],
                                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE, cwd=str(socket.parent))


async def _answers_while_alive(client: LibpodClient, proc: trio.Process) -> bool:
    """Wait until the new service answers; False if it exits or stays silent too long (it is then killed)."""
    with trio.move_on_after(START_TIMEOUT):
        while proc.poll() is None:
            if await client.ping():
                return True
            await trio.sleep(START_POLL)
        return False
    log.error("the podman service (pid %d) did not answer within %.0f s", proc.pid, START_TIMEOUT)
    return False


async def _log_stderr(proc: trio.Process) -> None:
    """Podman's stderr, line by line, into the nodeos log at the level each line names."""
    pending = b""
    async for chunk in proc.stderr:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            _log_line(line)
    if pending:
        _log_line(pending)


def _log_line(raw: bytes) -> None:
    line = raw.decode(errors="replace").rstrip()
    if line:
        match = _LEVEL.search(line)
        log.log(_LEVELS.get(match.group(1), logging.INFO) if match else logging.INFO, "podman: %s", line)


async def _stop(proc: trio.Process) -> None:
    """SIGTERM, then SIGKILL after STOP_GRACE seconds; return once it has exited."""
    if proc.poll() is not None:
        return
    log.info("stopping the podman service (pid %d)", proc.pid)
    proc.terminate()
    with trio.move_on_after(STOP_GRACE):
        await proc.wait()
        return
    log.warning("the podman service (pid %d) ignored SIGTERM; killing it", proc.pid)
    proc.kill()
    await proc.wait()
