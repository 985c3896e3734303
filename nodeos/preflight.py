"""The daemon's start checks: faults of the host said in one line before anything starts.

Why before: every component runs under ``supervise``, which restarts a crash
with back-off forever. That is right for a passing fault (Podman restarting,
a master away for a minute) and wrong for one that only the operator can
end: a port another process holds, a data dir that cannot be written. The
node would log a traceback every 30 s and never be up, and systemd would
wait out ``TimeoutStartSec`` for a READY=1 that never comes. Checked here,
each is one line naming the thing (the key, the address, the path) and a
non-zero exit: 2 (``ConfigError``) for what needs the operator, which the
unit does not restart; 1 (``AddressUnavailable``) for a port in use or an
address not (yet) on the host, which the unit retries after ``RestartSec``:
the port's holder may be a process on its way out, the address may come
with the network at boot.

The checks race with the world (a port taken between the check and the
bind); what slips through fails in its component, as it did before.

Everything here blocks (files, sockets): call it from a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sqlite3
import tempfile

from nodeos.config import Address, Config
from nodeos.errors import ConfigError, NodeosError

__all__ = ["AddressUnavailable", "check_ports", "listeners", "prepare_data_dir"]


class AddressUnavailable(NodeosError):
    """An address the node listens on is taken, or not on the host yet (the daemon exits 1; systemd retries)."""


def prepare_data_dir(config: Config) -> None:
    """Create the data dir (0700) if missing, and prove it, and the audit log, writable; ConfigError if not."""
    path = config.node.data_dir
    where = f"{_source(config)}: [node] data_dir"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where}: {path} is not a directory")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # 0700: the store, keys and tokens live here
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {path}: {_reason(exc)}") from None
    try:  # root passes every permission check but not a read-only mount: only writing tells
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: {path} is not writable: {_reason(exc)}") from None
    if config.node.role != "worker":
        _check_audit_log(config)
        _check_store(config)


def _check_audit_log(config: Config) -> None:
    """The audit log opens for appending: found only by the API server's writer, it would be a logged loss."""
    from nodeos.api.audit import audit_path  # the API server's module, loaded only to start one

    path = audit_path(config)
    if path is None:
        return
    where = f"{_source(config)}: [api] audit_log"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{where}: {path.parent} is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {path.parent}: {_reason(exc)}") from None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write {path}: {_reason(exc)}") from None


def _check_store(config: Config) -> None:
    """An embedded store that SQLite cannot read (overwritten, truncated): found by the API server, a restart loop.

    Reads the header and schema only: a damaged page deeper in is the store's
    to report. Opening applies a write-ahead log a SIGKILL left, as the store would.
    """
    path = config.node.data_dir / "store.db"
    if config.store.backend != "sqlite" or not path.exists():
        return
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        raise ConfigError(f"{_source(config)}: [store] backend \"sqlite\": {path}: {exc}; restore it from a "
                          "backup, or move it away for an empty cluster") from None


def listeners(config: Config, agent_host: str | None = None) -> list[tuple[str, Address]]:
    """The TCP addresses the node's components will listen on, each with the key that sets it.

    The API's ports on a master (or "all"); the agent's port where the agent
    runs pods on Podman, on ``agent_host`` (the node's InternalIP).
    """
    found: list[tuple[str, Address]] = []
    if config.node.role != "worker":
        found.append(("[api] listen", config.api.listen))
        if config.api.insecure_listen is not None:
            found.append(("[api] insecure_listen", config.api.insecure_listen))
    runs_agent = config.node.role != "master" and "agent" not in config.node.disable
    if runs_agent and config.agent.runtime == "podman" and agent_host is not None:
        found.append(("[agent] port", Address(agent_host, config.agent.port)))
    return found


def check_ports(config: Config) -> None:
    """AddressUnavailable, or ConfigError for an address that cannot be listened on at all, naming the key and
    address."""
    agent_host = config.agent.address
    if agent_host is None and config.node.role != "master":
        from nodeos.agent.host import default_address

        agent_host = default_address()
    for key, address in listeners(config, agent_host):
        _try_bind(config, key, address)


def _try_bind(config: Config, key: str, address: Address) -> None:
    """Bind as the servers will (SO_REUSEADDR: a port in TIME_WAIT after a restart is free) and let go."""
    where = f"{_source(config)}: {key}"
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(address.host or None, address.port,
                                                              type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1)
    except socket.gaierror as exc:
        raise ConfigError(f"{where}: cannot resolve {address}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressUnavailable(f"{where}: {address} is in use by another process") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise AddressUnavailable(f"{where}: {address} is not an address of this host") from None
        raise ConfigError(f"{where}: cannot listen on {address}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _source(config: Config) -> str:
    return str(config.source) if config.source else "<config>"
