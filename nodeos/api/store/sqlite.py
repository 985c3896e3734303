"""The embedded store: SQLite in WAL mode, one global revision.

Design notes
------------
- One table of current values, keyed by the full key, each row carrying the
  revision of its last write; one row of metadata holds the global revision.
  A delete bumps the revision too, so revisions order every change.
- **Group commit.** Writers queue their operation; one writer task takes every
  operation waiting, runs them in a single transaction in a worker thread
  (each with its own compare-and-swap check), commits once with
  ``synchronous=FULL`` and then answers each. A write is acknowledged only
  after its commit has reached the disk, and concurrent writers share the cost
  of the fsync instead of queueing behind one each.
- **History.** Watch history is the in-memory tail of recent events (the API's
  watch cache keeps the longer window). A watch from before that tail raises
  ``Compacted``; after a restart the tail starts empty, so clients resuming
  from an older revision get 410 and relist, as Kubernetes clients expect.
- SQLite work never runs on the trio loop: reads and the writer's batches go
  through ``trio.to_thread``.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from nodeos.api.store.base import KeyValue, StoreEvent
from nodeos.errors import Compacted, KeyExists, KeyNotFound, RevisionMismatch, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1);
"""

MAX_BATCH = 512
HISTORY = 20_000
WATCH_BUFFER = 100_000


@dataclass
class _Op:
    """A queued write: ``apply`` runs in the writer thread inside the batch's
    transaction and returns the event it caused."""

    apply: Callable[[sqlite3.Connection, int], StoreEvent]
    done: trio.Event = field(default_factory=trio.Event)
    event: StoreEvent | None = None
    error: BaseException | None = None


class SQLiteStore:
    """The default store. Construct, ``await start()``, use, ``await close()``."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL", history: int = HISTORY) -> None:
        self._path = str(path)
        self._synchronous = synchronous
        self._writer_db: sqlite3.Connection | None = None
        self._reader_db: sqlite3.Connection | None = None
        self._revision = 0
        self._history: collections.deque[StoreEvent] = collections.deque(maxlen=history)
        self._watchers: set[trio.MemorySendChannel[StoreEvent]] = set()
        self._queue_send, self._queue_recv = trio.open_memory_channel[_Op](10_000)
        self._write_limiter = trio.CapacityLimiter(1)
        self._read_limiter = trio.CapacityLimiter(1)
        self._writer_scope: trio.CancelScope | None = None
        self._writer_done = trio.Event()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        self._writer_db = await trio.to_thread.run_sync(self._connect)
        self._reader_db = await trio.to_thread.run_sync(self._connect)
        self._revision = await self._read(_read_revision)
        trio.lowlevel.spawn_system_task(self._writer_loop, name="nodeos.sqlite-writer")

    def _connect(self) -> sqlite3.Connection:
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self._path}: {exc}") from exc
        return db

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue_send.close()
        with trio.move_on_after(10):
            await self._writer_done.wait()
        for watcher in list(self._watchers):
            watcher.close()
        for db in (self._writer_db, self._reader_db):
            if db is not None:
                await trio.to_thread.run_sync(db.close, limiter=self._write_limiter)

    # -- reads ---------------------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        assert self._reader_db is not None, "store not started"
        db = self._reader_db
        try:
            return await trio.to_thread.run_sync(fn, db, limiter=self._read_limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    async def current_revision(self) -> int:
        return self._revision

    async def get(self, key: str) -> KeyValue | None:
        def read(db: sqlite3.Connection) -> KeyValue | None:
            row = db.execute("SELECT value, revision FROM kv WHERE key = ?", (key,)).fetchone()
            return KeyValue(key, row[0], row[1]) if row else None

        return await self._read(read)

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        def read(db: sqlite3.Connection) -> tuple[list[KeyValue], int]:
            # One read transaction so the rows and the revision agree.
            db.execute("BEGIN")
            try:
                revision = _read_revision(db)
                rows = db.execute(
                    "SELECT key, value, revision FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                    (prefix, prefix + "\uffff"),
                ).fetchall()
            finally:
                db.execute("COMMIT")
            return [KeyValue(k, v, r) for k, v, r in rows], revision

        return await self._read(read)

    # -- writes --------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        def apply(db: sqlite3.Connection, revision: int) -> StoreEvent:
            if db.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone():
                raise KeyExists(key)
            db.execute("INSERT INTO kv (key, value, revision) VALUES (?, ?, ?)", (key, value, revision))
            return StoreEvent("ADDED", key, value, revision)

        return await self._write(apply)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        def apply(db: sqlite3.Connection, revision: int) -> StoreEvent:
            prev = _current(db, key)
            if prev.revision != expected_revision:
                raise RevisionMismatch(key, prev.revision)
            db.execute("UPDATE kv SET value = ?, revision = ? WHERE key = ?", (value, revision, key))
            return StoreEvent("MODIFIED", key, value, revision, prev.value)

        return await self._write(apply)

    async def delete(self, key: str, expected_revision: int | None = None) -> int:
        def apply(db: sqlite3.Connection, revision: int) -> StoreEvent:
            prev = _current(db, key)
            if expected_revision is not None and prev.revision != expected_revision:
                raise RevisionMismatch(key, prev.revision)
            db.execute("DELETE FROM kv WHERE key = ?", (key,))
            return StoreEvent("DELETED", key, prev.value, revision, prev.value)

        return await self._write(apply)

    async def _write(self, apply: Callable[[sqlite3.Connection, int], StoreEvent]) -> int:
        if self._closed:
            raise StoreError("the store is closed")
        op = _Op(apply)
        await self._queue_send.send(op)
        await op.done.wait()
        if op.error is not None:
            raise op.error
        assert op.event is not None
        return op.event.revision

    async def _writer_loop(self) -> None:
        try:
            async for first in self._queue_recv:
                batch = [first]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._queue_recv.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._commit(batch)
        finally:
            self._writer_done.set()

    async def _commit(self, batch: list[_Op]) -> None:
        try:
            revision = await trio.to_thread.run_sync(
                self._apply_batch, batch, limiter=self._write_limiter
            )
        except sqlite3.Error as exc:
            error = StoreError(f"store write failed: {exc}")
            for op in batch:
                op.error, op.event = error, None
                op.done.set()
            return
        self._revision = revision
        for op in batch:
            if op.event is not None:
                self._publish(op.event)
            op.done.set()

    def _apply_batch(self, batch: list[_Op]) -> int:
        """Run in the writer thread: every op in one transaction, one commit."""
        db = self._writer_db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            revision = _read_revision(db)
            for op in batch:
                try:
                    op.event = op.apply(db, revision + 1)
                    revision += 1
                except StoreError as exc:
                    op.error = exc
            db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return revision

    # -- watch ---------------------------------------------------------------

    def _publish(self, event: StoreEvent) -> None:
        self._history.append(event)
        for watcher in list(self._watchers):
            try:
                watcher.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                # A watcher this far behind is cut off; it resumes from its
                # last revision or gets Compacted.
                watcher.close()
                self._watchers.discard(watcher)

    async def watch(self, from_revision: int) -> AsyncIterator[StoreEvent]:
        oldest = self._history[0].revision if self._history else self._revision + 1
        if from_revision < oldest - 1 and from_revision < self._revision:
            raise Compacted(from_revision, oldest)
        send, recv = trio.open_memory_channel[StoreEvent](WATCH_BUFFER)
        backlog = [e for e in self._history if e.revision > from_revision]
        self._watchers.add(send)
        try:
            for event in backlog:
                yield event
            last = backlog[-1].revision if backlog else from_revision
            async with recv:
                async for event in recv:
                    if event.revision > last:
                        last = event.revision
                        yield event
            if not self._closed:
                raise WatchCutOff(last)
        finally:
            self._watchers.discard(send)
            send.close()

    async def compact(self, revision: int) -> None:
        while self._history and self._history[0].revision <= revision:
            self._history.popleft()


class WatchCutOff(StoreError):
    """A watcher fell more than a buffer behind and was dropped; it may
    resume from ``last`` (the last revision it received)."""

    def __init__(self, last: int) -> None:
        super().__init__(f"watch fell behind after revision {last}")
        self.last = last


def _read_revision(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()[0])


def _current(db: sqlite3.Connection, key: str) -> KeyValue:
    row = db.execute("SELECT value, revision FROM kv WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise KeyNotFound(key)
    return KeyValue(key, row[0], row[1])
