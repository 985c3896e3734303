"""Copy every key of one store into another, empty one: ``nodeos store migrate``.

It is how a single-master cluster on SQLite moves to etcd (and back: the copy
is symmetrical, so it round-trips). Reading, the emptiness check and the
verification go through the ``Store`` interface, and so do writes into
SQLite; writes into etcd go in transactions of many keys (see below):

- values are stored without ``resourceVersion`` (see ``base``), so they are
  copied byte for byte; the target gives every key a new revision. Clients
  that resume with a revision of the old store get 410 from the new one and
  relist: the new master's watch cache starts its history at its own start,
  and the API answers 410 for a revision newer than the cache's;
- the target must be empty. There is no ``--force``: merging two clusters'
  objects, or half-overwriting one, is never what anyone wants, and emptying
  a store on purpose is one command the refusal spells out;
- a SQLite store must not be open in a running daemon (``sqlite_in_use``): a
  daemon keeps writing what the copy has already read;
- the source's compaction record (``watchcache.COMPACTION_KEY``) is not
  copied: it names a revision of the source's history, which means nothing
  in the target's numbering (a record ahead of the target's revisions would
  keep the target's masters from recording their own compactions);
- the copy ends by listing both stores again and comparing counts per
  resource and a checksum of every key and value; any difference (a write
  that raced the copy, a lost create) is an error, never a success.

Writes run in parallel batches, a bounded number at a time: into SQLite,
one create per key, which its group commit writes together; into etcd, one
transaction per batch of keys (``etcd_bulk``), since one request and one raft
proposal per key made 10,000 objects take half a minute.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import trio

from nodeos.api.store.base import KeyValue, Store
from nodeos.api.store.etcd import EtcdStore, EtcdTLS
from nodeos.api.store.etcd_bulk import EtcdBulkCreate, batches
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.watchcache import COMPACTION_KEY
from nodeos.errors import NodeosError, StoreError

Backend = Literal["sqlite", "etcd"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "etcd")
CONCURRENCY = 64  # creates in flight into SQLite, whose group commit then writes them together
ETCD_CONCURRENCY = 8  # transactions of up to MAX_BATCH_KEYS keys in flight into etcd
TIMEOUT = 30.0  # seconds any one call to a store may take before the migration gives up
PROGRESS_EVERY = 1.0  # seconds between progress reports
NOT_COPIED = frozenset({COMPACTION_KEY})  # records of the source's history, meaningless in the target


class MigrationError(NodeosError):
    """The migration refused to start or failed; the message says what to do."""


@dataclass(frozen=True)
class StoreSpec:
    """Where one side of the migration is: a SQLite file, or etcd endpoints and a key prefix."""

    backend: Backend
    sqlite_path: Path | None = None
    etcd_endpoints: tuple[str, ...] = ()
    etcd_prefix: str = "/nodeos"  # EtcdStore's default
    etcd_tls: EtcdTLS | None = None

    def describe(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite {self.sqlite_path}"
        return f"etcd {','.join(self.etcd_endpoints)} prefix {self.etcd_prefix!r}"

    def open(self, timeout: float = TIMEOUT) -> Store:
        """The store object, not yet started; an etcd client gives up on a call after ``timeout``."""
        if self.backend == "sqlite":
            assert self.sqlite_path is not None
            return SQLiteStore(self.sqlite_path)
        return EtcdStore(list(self.etcd_endpoints), prefix=self.etcd_prefix, tls=self.etcd_tls,
                         request_timeout=timeout)


@dataclass
class Summary:
    """What was copied: keys per resource, the checksum both stores agree on, and the time taken."""

    per_resource: dict[str, int] = field(default_factory=dict)
    checksum: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.per_resource.values())


Progress = Callable[[int, int], None]  # (keys copied so far, keys to copy)


async def migrate(source: StoreSpec, target: StoreSpec, *, concurrency: int | None = None,
                  timeout: float = TIMEOUT, progress: Progress | None = None) -> Summary:
    """Copy every key of ``source`` into the empty ``target`` and verify the result.

    Raises MigrationError, having written nothing, when a side is unreachable or
    in use, or the target is not empty; raises it too when a create fails or the
    verification finds a difference (the target then holds a partial copy, which
    the message says how to clear). ``timeout`` bounds every single call to a
    store, so an unreachable etcd is an error, not a hang.
    """
    started = time.monotonic()
    _refuse_same_store(source, target)
    for spec in (source, target):
        if spec.backend == "sqlite":
            await _check_sqlite(spec, must_exist=spec is source)
    src = _Side(source, source.open(timeout), timeout)
    await src.start()
    try:
        items = _copied(await src.list(""))
        if not items:
            raise MigrationError(f"the source {source.describe()} is empty: nothing to migrate "
                                 "(is it the right data dir, endpoints and prefix?)")
        summary = await _copy_into(target, items, src, concurrency, timeout, progress)
    finally:
        await src.close()
    summary.seconds = time.monotonic() - started
    return summary


async def _copy_into(target: StoreSpec, items: list[KeyValue], src: _Side, concurrency: int | None, timeout: float,
                     progress: Progress | None) -> Summary:
    """Open the target, refuse it unless empty, copy and verify; a SQLite file this
    run created is removed again when anything fails."""
    created_file = target.backend == "sqlite" and not _sqlite_exists(target)
    dst = _Side(target, target.open(timeout), timeout)
    try:
        await dst.start()
        await _refuse_non_empty(dst)
        await _copy(items, dst, concurrency, progress)
        return await _verify(items, src, dst)
    except BaseException as exc:
        if not created_file:
            raise
        await dst.close()
        _remove_sqlite(target)
        if isinstance(exc, MigrationError):
            raise MigrationError(f"{exc} (this run created {target.sqlite_path} and has removed it)") from exc
        raise
    finally:
        await dst.close()


# -- refusals ------------------------------------------------------------------


def _refuse_same_store(source: StoreSpec, target: StoreSpec) -> None:
    if source.backend != target.backend:
        return
    if source.backend == "sqlite":
        same = Path(source.sqlite_path or "").resolve() == Path(target.sqlite_path or "").resolve()
    else:
        same = source.etcd_prefix == target.etcd_prefix and bool(
            set(source.etcd_endpoints) & set(target.etcd_endpoints))
    if same:
        raise MigrationError(f"the source and the target are the same store ({source.describe()})")


async def _check_sqlite(spec: StoreSpec, *, must_exist: bool) -> None:
    path = spec.sqlite_path
    assert path is not None
    if not _sqlite_exists(spec):
        if must_exist:
            raise MigrationError(f"no SQLite store at {path}: check [node] data_dir or --sqlite")
        return
    in_use = await trio.to_thread.run_sync(sqlite_in_use, path)
    if in_use:
        raise MigrationError(f"{path} is in use ({in_use}): stop the nodeos daemon on that data dir first")


def sqlite_in_use(path: Path) -> str | None:
    """Why the SQLite store at ``path`` is open in another process, or None if it is not.

    How it decides: the daemon opens its store in WAL mode and keeps its
    connections open as long as it runs, and every WAL connection holds a shared
    lock on the database. Taking SQLite's *exclusive* lock (locking_mode
    EXCLUSIVE, BEGIN EXCLUSIVE) without waiting therefore fails exactly while
    another process has the store open, whoever runs it and whatever port it
    serves on. The lock is released at once; a daemon started during the copy
    is caught by the final verification instead.
    """
    try:
        db = sqlite3.connect(str(path), timeout=0, isolation_level=None)
    except sqlite3.Error as exc:
        return f"cannot open it: {exc}"
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("BEGIN EXCLUSIVE")
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        return f"another process holds it open: {exc}"
    finally:
        db.close()
    return None


async def _refuse_non_empty(dst: _Side) -> None:
    existing, _ = await dst.list("")
    if not existing:
        return
    spec = dst.spec
    if spec.backend == "sqlite":
        how = f"move {spec.sqlite_path} (with its -wal and -shm files) away"
    else:
        endpoints = ",".join(spec.etcd_endpoints)
        how = f"etcdctl --endpoints={endpoints} del --prefix '{spec.etcd_prefix.rstrip('/')}/'"
        how = f"empty it with: {how}, or choose another --etcd-prefix"
    raise MigrationError(f"the target {spec.describe()} is not empty ({len(existing)} keys, "
                         f"e.g. {existing[0].key}): nothing was copied. To migrate into it, {how}")


# -- the copy ------------------------------------------------------------------


class _Side:
    """One store of the migration: its failures turned into a MigrationError that
    names the store, and every call bounded, beyond the store's own retries
    (the etcd client retries each call across endpoints for ``timeout``)."""

    def __init__(self, spec: StoreSpec, store: Store, timeout: float) -> None:
        self.spec, self.store = spec, store
        self.timeout = timeout * 2 + 1

    async def start(self) -> None:
        try:
            with trio.fail_after(self.timeout):
                await self.store.start()
        except (StoreError, OSError, trio.TooSlowError) as exc:
            await self.close()
            raise MigrationError(f"cannot open {self.spec.describe()}: {self._reason(exc)}") from exc

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        try:
            with trio.fail_after(self.timeout):
                return await self.store.list(prefix)
        except (StoreError, OSError, trio.TooSlowError) as exc:
            raise MigrationError(f"cannot read {self.spec.describe()}: {self._reason(exc)}") from exc

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Callable[[list[KeyValue]], Awaitable[None]]]:
        """A function that creates one batch of keys: one create each on SQLite (whose
        group commit batches concurrent creates itself), one transaction on etcd."""
        if self.spec.backend == "sqlite":
            async def create_one(batch: list[KeyValue]) -> None:
                for kv in batch:
                    await self.store.create(kv.key, kv.value)

            yield create_one
            return
        bulk = EtcdBulkCreate(self.spec.etcd_endpoints, prefix=self.spec.etcd_prefix, tls=self.spec.etcd_tls,
                              timeout=self.timeout / 2)
        async with bulk:
            yield bulk.create

    async def create(self, write: Callable[[list[KeyValue]], Awaitable[None]], batch: list[KeyValue],
                     done: int, total: int) -> None:
        try:
            with trio.fail_after(self.timeout):
                await write(batch)
        except (StoreError, OSError, trio.TooSlowError) as exc:
            raise MigrationError(f"creating {batch[0].key} in {self.spec.describe()} failed after {done} of "
                                 f"{total} keys: {self._reason(exc)}; the target holds a partial copy: clear it "
                                 "and rerun") from exc

    async def close(self) -> None:
        with trio.CancelScope(shield=True), suppress(StoreError, OSError):
            await self.store.close()

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, trio.TooSlowError):
            return f"no answer within {self.timeout:g} s"
        return str(exc) or type(exc).__name__


async def _copy(items: Sequence[KeyValue], dst: _Side, concurrency: int | None, progress: Progress | None) -> None:
    """Create every key, ``concurrency`` batches at a time; the first failure cancels the rest."""
    if dst.spec.backend == "etcd":
        units, concurrency = batches(items), concurrency or ETCD_CONCURRENCY
    else:
        units, concurrency = [[kv] for kv in items], concurrency or CONCURRENCY
    slots = trio.Semaphore(concurrency)
    done = 0
    last_report = time.monotonic()

    async def create(write: Callable[[list[KeyValue]], Awaitable[None]], batch: list[KeyValue]) -> None:
        nonlocal done, last_report
        try:
            await dst.create(write, batch, done, len(items))
        finally:
            slots.release()
        done += len(batch)
        if progress is not None and (time.monotonic() - last_report >= PROGRESS_EVERY or done == len(items)):
            last_report = time.monotonic()
            progress(done, len(items))

    try:
        async with dst.writing() as write, trio.open_nursery() as nursery:
            for batch in units:
                await slots.acquire()
                nursery.start_soon(create, write, batch)
    except BaseExceptionGroup as group:
        first = _first_migration_error(group)
        if first is None:
            raise
        raise first from None


def _first_migration_error(group: BaseExceptionGroup) -> MigrationError | None:
    for exc in group.exceptions:
        if isinstance(exc, MigrationError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_migration_error(exc)
            if found is not None:
                return found
    return None


# -- verification --------------------------------------------------------------


async def _verify(items: list[KeyValue], src: _Side, dst: _Side) -> Summary:
    """Both stores, listed again, hold exactly ``items``: same keys, same values."""
    want = counts(items), checksum(items)
    copied = _copied(await dst.list(""))
    if (counts(copied), checksum(copied)) != want:
        raise MigrationError(f"verification failed: the target {dst.spec.describe()} differs from what was "
                             f"read ({_difference(items, copied)}); it holds a partial copy, clear it and rerun")
    again = _copied(await src.list(""))
    if checksum(again) != want[1]:
        raise MigrationError(f"the source {src.spec.describe()} changed during the copy "
                             f"({_difference(items, again)}): is a daemon running on it? Stop it, clear the "
                             f"target and rerun")
    return Summary(per_resource=want[0], checksum=want[1])


def _copied(listing: tuple[list[KeyValue], int]) -> list[KeyValue]:
    """What a migration copies of a store's listing: every key but the source's own history records."""
    return [kv for kv in listing[0] if kv.key not in NOT_COPIED]


def resource_of(key: str) -> str:
    """The resource a key belongs to, as kubectl names it: ``/apps/deployments/ns/x`` -> ``deployments.apps``."""
    parts = key.split("/")
    if len(parts) < 3 or not parts[1] or not parts[2]:
        return "(other)"
    group, plural = parts[1], parts[2]
    return plural if group == "core" else f"{plural}.{group}"


def counts(items: Sequence[KeyValue]) -> dict[str, int]:
    return dict(sorted(Counter(resource_of(kv.key) for kv in items).items()))


def checksum(items: Sequence[KeyValue]) -> str:
    """SHA-256 over every (key, value) in key order; revisions are left out, since the target renumbers them."""
    digest = hashlib.sha256()
    for kv in sorted(items, key=lambda kv: kv.key):
        key = kv.key.encode()
        digest.update(len(key).to_bytes(4, "big") + key + len(kv.value).to_bytes(8, "big") + kv.value)
    return digest.hexdigest()


def _difference(expected: Sequence[KeyValue], got: Sequence[KeyValue]) -> str:
    want = {kv.key: kv.value for kv in expected}
    have = {kv.key: kv.value for kv in got}
    missing = sorted(want.keys() - have.keys())
    extra = sorted(have.keys() - want.keys())
    changed = sorted(k for k in want.keys() & have.keys() if want[k] != have[k])
    parts = [f"{len(keys)} {what}, e.g. {keys[0]}" for what, keys in
             (("missing", missing), ("extra", extra), ("changed", changed)) if keys]
    return "; ".join(parts) or "same keys and values"


# -- helpers -------------------------------------------------------------------


def _sqlite_exists(spec: StoreSpec) -> bool:
    return spec.sqlite_path is not None and Path(spec.sqlite_path).exists()


def _remove_sqlite(spec: StoreSpec) -> None:
    """Remove a SQLite store this migration created, so a failed run leaves nothing behind."""
    assert spec.sqlite_path is not None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{spec.sqlite_path}{suffix}").unlink(missing_ok=True)
