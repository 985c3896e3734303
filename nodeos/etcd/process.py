"""The managed etcd: Debian's ``etcd`` binary as a supervised child of the daemon.

``run_etcd`` is a daemon component: it (re)issues the member's certificates,
starts ``etcd`` with this node's flags, reports started once the member is
healthy (or after ``HEALTH_GRACE`` without quorum, so that the rest of the
master can come up and wait for the store as it would for a remote one),
and raises ``EtcdExited`` when etcd dies, for ``supervise`` to restart it
with back-off.

Resource handling — never an orphan: etcd is spawned from a thread that
lives exactly as long as etcd does (it waits for it), with
``PR_SET_PDEATHSIG`` = SIGKILL set in the child. The kernel sends that
signal when the *thread* that forked the child exits, which is why the fork
cannot happen on trio's worker threads (they retire after 10 s idle), and why
it must not happen on the trio loop (``fork`` of a large process blocks).
So if the daemon is SIGKILLed, etcd dies with it; on cancellation (SIGTERM to
the daemon) etcd gets SIGTERM and ``STOP_TIMEOUT`` to exit before SIGKILL.

Logging: etcd logs JSON lines (zap) to stderr; each becomes a record of
``nodeos.etcd.server``: etcd's info at DEBUG (it is chatty), warn at WARNING,
error and worse at ERROR.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable

import trio

from nodeos.config import Config
from nodeos.errors import ConfigError, NodeosError
from nodeos.etcd.gateway import Gateway
from nodeos.etcd.member import Bootstrap, Certificates, LocalMember

__all__ = ["EtcdExited", "check_startable", "etcd_argv", "run_etcd"]

log = logging.getLogger(__name__)
server_log = logging.getLogger("nodeos.etcd.server")

HEALTH_GRACE = 30.0
STOP_TIMEOUT = 10.0
_LEVELS = {"debug": logging.DEBUG, "info": logging.DEBUG, "warn": logging.WARNING}
# Warnings etcd 3.4 gives in normal operation: a member (re)connecting, and the auth token kind of a
# cluster without auth. Logged at INFO so that a WARNING from etcd means something (a peer lost, say).
_ROUTINE = ("simple token is not cryptographically signed", "established TCP streaming connection",
            "peer became active")
_PR_SET_PDEATHSIG = 1


class EtcdExited(NodeosError):
    """The etcd child exited; ``supervise`` restarts it."""


def check_startable(config: Config) -> None:
    """Raise ConfigError, before the daemon starts anything, when the managed member cannot start.

    Blocking (reads the CA), but it runs once before the daemon's nursery, as the config load does.
    """
    member = LocalMember.from_config(config)
    if shutil.which("etcd") is None:
        raise ConfigError(f"{member.source}: [etcd] managed: no etcd binary on PATH (Debian: apt install etcd-server)")
    if not member.initialized and not member.bootstrap_path.exists():
        raise ConfigError(
            f"{member.source}: [etcd] managed: this node has no etcd member yet: run "
            f"`nodeos etcd init --config {member.source}` on the first master, or "
            f"`nodeos etcd join --config {member.source} --endpoint URL` on another")
    member.load_ca()  # a missing or broken CA would only crash the member again at every restart


def etcd_argv(member: LocalMember, certs: Certificates, bootstrap: Bootstrap | None) -> list[str]:
    """etcd's command line for this member; ``bootstrap`` only while its data directory is empty."""
    argv = [
        shutil.which("etcd") or "etcd",
        f"--name={member.name}",
        f"--data-dir={member.etcd_dir}",
        f"--listen-client-urls={member.listen_client_url}",
        f"--advertise-client-urls={member.client_url}",
        f"--listen-peer-urls={member.listen_peer_url}",
        f"--initial-advertise-peer-urls={member.peer_url}",
        f"--peer-cert-file={certs.peer.cert_path}",
        f"--peer-key-file={certs.peer.key_path}",
        f"--peer-trusted-ca-file={certs.ca}",
        "--peer-client-cert-auth",
        "--logger=zap",
        "--log-outputs=stderr",
    ]
    if certs.server is not None:
        argv += [f"--cert-file={certs.server.cert_path}", f"--key-file={certs.server.key_path}",
                 f"--trusted-ca-file={certs.ca}", "--client-cert-auth"]
    if bootstrap is not None:
        argv += bootstrap.flags()
    return argv


async def run_etcd(config: Config, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    member = LocalMember.from_config(config)
    certs = await trio.to_thread.run_sync(member.certificates)
    bootstrap = None if member.initialized else await trio.to_thread.run_sync(
        Bootstrap.read, member.bootstrap_path)
    argv = etcd_argv(member, certs, bootstrap)
    log.info("starting etcd member %s (peer %s, client %s%s)", member.name, member.peer_url, member.client_url,
             f", {bootstrap.state} cluster" if bootstrap else "")
    async with trio.open_nursery() as nursery:
        child: _Child = await nursery.start(_Child.run, argv)
        try:
            await _wait_healthy(member, certs, child)
            task_status.started()
            await child.exited.wait()
            with trio.move_on_after(2):  # etcd's last lines say why it exited
                await child.drained.wait()
            raise EtcdExited(f"etcd exited with code {child.returncode}{child.last_error}")
        finally:
            await child.stop()


class _Child:
    """The etcd process, spawned and waited for by its own thread (see the module's docstring)."""

    def __init__(self, popen: subprocess.Popen[bytes], exited: trio.Event) -> None:
        self.popen = popen
        self.exited = exited  # the process is gone (set by the thread that waits for it)
        self.drained = trio.Event()  # and its stderr read to the end
        self.last_error = ""  # etcd's last warning or error, for the message of EtcdExited

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    @classmethod
    async def run(cls, argv: list[str], *, task_status: trio.TaskStatus[_Child]) -> None:
        """Spawn etcd, report it started, log its stderr; return once it has exited."""
        token = trio.lowlevel.current_trio_token()
        spawned: list[subprocess.Popen[bytes] | OSError] = []
        ready, exited = trio.Event(), trio.Event()

        def report(result: subprocess.Popen[bytes] | OSError) -> None:
            spawned.append(result)
            ready.set()

        def spawn_and_wait() -> None:
            try:
                popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, preexec_fn=_die_with_parent(os.getpid()))
            except OSError as exc:
                trio.from_thread.run_sync(report, exc, trio_token=token)
                return
            trio.from_thread.run_sync(report, popen, trio_token=token)
            popen.wait()
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(exited.set, trio_token=token)

        threading.Thread(target=spawn_and_wait, name="etcd-child", daemon=True).start()
        await ready.wait()
        if isinstance(spawned[0], OSError):
            raise EtcdExited(f"cannot start {argv[0]}: {spawned[0]}")
        child = cls(spawned[0], exited)
        stderr = trio.lowlevel.FdStream(os.dup(child.popen.stderr.fileno()))  # type: ignore[union-attr]
        child.popen.stderr.close()  # type: ignore[union-attr]
        task_status.started(child)
        try:
            await child._log_lines(stderr)
            child.drained.set()
            await exited.wait()
        finally:
            with trio.CancelScope(shield=True):
                await stderr.aclose()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns once etcd is gone."""
        if self.exited.is_set():
            return
        with trio.CancelScope(shield=True):
            self.popen.send_signal(signal.SIGTERM)
            with trio.move_on_after(STOP_TIMEOUT):
                await self.exited.wait()
            if not self.exited.is_set():
                log.warning("etcd did not stop within %.0fs of SIGTERM; killing it", STOP_TIMEOUT)
                self.popen.kill()
                await self.exited.wait()

    async def _log_lines(self, stream: trio.lowlevel.FdStream) -> None:
        """Log etcd's stderr line by line until it closes (etcd exited)."""
        buffer = b""
        while chunk := await stream.receive_some(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                level, message = _parse_line(line.decode(errors="replace"))
                if message:
                    server_log.log(level, "%s", message)
                    if level >= logging.WARNING:
                        self.last_error = f": {message}"


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGKILL when the thread that forked it ends."""
    libc = ctypes.CDLL(None, use_errno=True)  # looked up before the fork: the child only calls it
    prctl = libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    return preexec


def _parse_line(line: str) -> tuple[int, str]:
    """A zap JSON line as (level, message with its fields); anything else is a warning as it is."""
    if not line.strip():
        return logging.DEBUG, ""
    try:
        record = json.loads(line)
        level = _LEVELS.get(str(record.get("level")), logging.ERROR)
        if level == logging.WARNING and str(record.get("msg", "")).startswith(_ROUTINE):
            level = logging.INFO
        extra = {k: v for k, v in record.items() if k not in ("level", "ts", "caller", "msg")}
        return level, f"{record.get('msg', '')}{f' {json.dumps(extra)}' if extra else ''}"
    except (ValueError, AttributeError):
        return logging.WARNING, line


async def _wait_healthy(member: LocalMember, certs: Certificates, child: _Child) -> None:
    """Until /health says true; after HEALTH_GRACE a warning and on (a joiner may wait for quorum)."""
    tls = None
    if certs.client is not None:
        tls = (str(certs.ca), str(certs.client.cert_path), str(certs.client.key_path))
    async with Gateway(member.client_url, tls, timeout=2.0) as gateway:
        with trio.move_on_after(HEALTH_GRACE):
            while not child.exited.is_set():
                try:
                    if (await gateway.get("/health")).get("health") == "true":
                        log.info("etcd member %s is healthy", member.name)
                        return
                except NodeosError:
                    pass
                await trio.sleep(0.2)
            raise EtcdExited(f"etcd exited with code {child.returncode} while starting")
    log.warning("etcd member %s is not healthy after %.0fs (no quorum yet?); going on", member.name,
                HEALTH_GRACE)
