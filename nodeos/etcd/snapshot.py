"""Backups of the etcd keyspace: save a snapshot from a live member, restore one into a new member.

Save streams ``/v3/maintenance/snapshot`` into a temporary file beside the
target, checks it with ``etcdctl snapshot status`` (which reads etcd's own
integrity hash), and only then renames it into place: a backup that exists is
a backup that restores.

Restore is etcd's disaster recovery: ``etcdctl snapshot restore`` makes a
data directory for a *new one-member cluster* holding the snapshot's keys,
here for this node's member (its name, peer URL). Other masters then join it
afresh (delete their etcd directory, `nodeos etcd join`). It refuses while the
member runs (etcd holds a lock on its WAL files, which is how we know), and
moves an existing directory aside only when asked (``force``), never deletes it.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import trio

from nodeos.config import Config
from nodeos.etcd.gateway import EtcdError, Gateway
from nodeos.etcd.member import Bootstrap, LocalMember

__all__ = ["SnapshotError", "SnapshotStatus", "member_running", "restore_snapshot", "save_snapshot",
           "snapshot_status"]


class SnapshotError(EtcdError):
    """A snapshot that cannot be written, read, verified or restored."""


@dataclass(frozen=True)
class SnapshotStatus:
    hash: int
    revision: int
    total_keys: int
    total_size: int


async def save_snapshot(gateway: Gateway, path: Path) -> SnapshotStatus:
    """Stream a snapshot from the member behind ``gateway`` into ``path``, verified, atomically."""
    path = path.absolute()
    if path.is_dir():
        raise SnapshotError(f"{path}: is a directory; give a file name")
    tmp = path.with_name(f".{path.name}.part")
    try:  # 0600: a snapshot holds every object, secrets included
        file = trio.wrap_file(await trio.to_thread.run_sync(_create_private, tmp))
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        async with file:
            async with gateway.stream("/v3/maintenance/snapshot") as messages:
                async for message in messages:
                    await file.write(base64.b64decode(message.get("blob", "")))
            await file.flush()
            await trio.to_thread.run_sync(os.fsync, file.fileno())
        status = await trio.to_thread.run_sync(snapshot_status, tmp)
        await trio.to_thread.run_sync(os.replace, tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return status


def _create_private(path: Path) -> BinaryIO:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def snapshot_status(path: Path) -> SnapshotStatus:
    """etcdctl's check of a snapshot file: its hash, revision, key count and size. Blocking."""
    result = _etcdctl("snapshot", "status", str(path), "--write-out=json")
    try:
        data = json.loads(result)
        return SnapshotStatus(data["hash"], data["revision"], data["totalKey"], data["totalSize"])
    except (ValueError, KeyError) as exc:
        raise SnapshotError(f"{path}: etcdctl snapshot status said {result!r}: {exc}") from None


def member_running(etcd_dir: Path) -> bool:
    """Whether an etcd process holds this data directory: it keeps a lock on its WAL files."""
    for wal in sorted((etcd_dir / "member" / "wal").glob("*.wal")):
        try:
            fd = os.open(wal, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops our lock too
    return False


def restore_snapshot(config: Config, path: Path, *, force: bool = False) -> tuple[SnapshotStatus, Path | None]:
    """Make this node's etcd directory from a snapshot; returns its status and where the old dir went.

    Blocking (etcdctl, files): run it in a thread from async code.
    """
    member = LocalMember.from_config(config)
    path = path.absolute()
    if not path.is_file():
        raise SnapshotError(f"{path}: no such snapshot file")
    status = snapshot_status(path)
    moved = None
    if member.etcd_dir.exists():
        if member_running(member.etcd_dir):
            raise SnapshotError(f"{member.etcd_dir}: the etcd member is running on it; stop the node's daemon first")
        if not force:
            raise SnapshotError(f"{member.etcd_dir} exists: pass --force to move it aside and restore in its place")
        moved = member.etcd_dir.with_name(f"etcd.before-restore-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}")
    member.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = member.etcd_dir.with_name("etcd.restoring")
    shutil.rmtree(staging, ignore_errors=True)  # what a crashed restore left; never the member's own dir
    bootstrap = Bootstrap.new_cluster(member.name, member.peer_url)
    _etcdctl("snapshot", "restore", str(path), f"--data-dir={staging}", f"--name={member.name}",
             f"--initial-cluster={member.name}={member.peer_url}",
             f"--initial-advertise-peer-urls={member.peer_url}",
             f"--initial-cluster-token={bootstrap.token}")
    if moved is not None:
        os.rename(member.etcd_dir, moved)
    os.rename(staging, member.etcd_dir)
    os.chmod(member.etcd_dir, 0o700)
    bootstrap.write(member.bootstrap_path)
    return status, moved


def _etcdctl(*args: str) -> str:
    if shutil.which("etcdctl") is None:
        raise SnapshotError("no etcdctl on PATH (Debian: apt install etcd-client)")
    result = subprocess.run(["etcdctl", *args], capture_output=True, text=True,
                            env={**os.environ, "ETCDCTL_API": "3"}, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise SnapshotError(f"etcdctl {args[0]} {args[1]} {args[2]}: {lines[-1] if lines else result.returncode}")
    return result.stdout
