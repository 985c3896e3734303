"""The audit log: one JSON line per mutating request, as Kubernetes' audit.k8s.io/v1 Events.

Why a middleware around ``ApiApp``: every listener (TLS and the insecure
port) and every route (resources, subresources, pod exec, join) passes
through one place, and the handlers stay unaware of it. It reads the user
that ``ApiApp`` put on ``scope["nodeos.user"]`` once the inner app has
answered; a request refused before authentication (401) has none and is
logged as ``system:anonymous``. Reads (GET, HEAD, watches) are not logged;
POST, PUT, PATCH and DELETE are, whatever their outcome (401, 403, 409, 422
too), and so are ``pods/exec`` (and attach, port-forward) WebSockets, with
verb ``create`` as Kubernetes authorizes them.

Level Metadata: who, what, when and the result, never the objects. The
name of a created object is not in the URL; it is taken from the response
(the object, or the Status of a refusal), else from the request body, when
the writer formats the batch — for bodies up to ``MAX_PARSE`` (64 KiB, half
a millisecond to parse), so a 3 MiB create costs the loop nothing but
goes without its name. A request refused before its body was read (401,
403) has none either, as in kube-apiserver's audit.

Resource handling: the request path only hands a small record to a
bounded memory channel (``await`` on it is back-pressure, never a blocked
loop); ``AuditLog.run`` takes what gathers within ``BATCH_WAIT`` of a first
record as one batch, formats it (~15 µs a record, a slice at a time between
checkpoints) and has a thread write it with one ``write`` to the file, so
the lines reach the kernel batch by batch and a SIGKILL loses at most the
batch in flight (the requests of its last 20 ms). Formatting stays on the
loop because pure-Python work in a thread holds the GIL against the loop,
which then waits out the interpreter's switch interval; ``write`` lets go of
it. One thread hand-off a batch, not one a request.
The file rotates past ``[api] audit_log_max_mb`` (``audit.log.1`` is the
newest old one), keeping ``[api] audit_log_keep`` old files.

Error handling: a failed write is logged once (not per request) and its
batch dropped; the server keeps serving, the file is opened anew for the
next batch, and recovery is logged once too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from nodeos.api.http.routes import NotRoutable, ResourcePath, parse
from nodeos.config import Config

__all__ = ["AuditLog", "AuditMiddleware", "Record", "audit_path", "audited", "event", "line", "start_audit"]

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MUTATING = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
STREAMS = ("exec", "attach", "portforward")  # WebSocket subresources that act in a pod: "create"
BUFFER = 4096  # records waiting for the writer before requests wait for it
BATCH = 1024  # records per write at most
MAX_PARSE = 64 * 1024  # bodies parsed for a created object's name at most
FORMAT_SLICE = 32  # records formatted between two checkpoints of the loop (~0.5 ms)
BATCH_WAIT = 0.02  # seconds a batch gathers after its first record: what a SIGKILL may lose at most
STOP_FLUSH_SECONDS = 5.0  # how long a stopping server spends writing what is left


def audit_path(config: Config) -> Path | None:
    """The audit log's file: ``[api] audit_log``, under the data dir when relative; None when off."""
    path = config.api.audit_log
    if path is None:
        return None
    return path if path.is_absolute() else config.node.data_dir / path


@dataclass(slots=True)
class Record:
    """What the request path gathers: plain values, turned into an Event by the writer, off the request path."""

    audit_id: str
    method: str
    uri: str
    path: str
    source_ip: str
    user_agent: str
    received: float
    websocket: bool = False
    code: int = 0
    finished: float = 0.0
    username: str = "system:anonymous"
    groups: tuple[str, ...] = ("system:unauthenticated",)
    response: list[bytes] = field(default_factory=list)  # kept for creates and refusals: name, reason
    request: list[bytes] = field(default_factory=list)  # kept for creates: the name, if the response lacks it


def event(record: Record) -> dict[str, Any]:
    """The audit.k8s.io/v1 Event of a finished request, at level Metadata (empty fields left out)."""
    route = _route(record.path)
    verb = _verb(record, route)
    event: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": record.audit_id,
        "stage": "ResponseComplete", "requestURI": record.uri, "verb": verb,
        "user": {"username": record.username, "groups": list(record.groups)},
        "sourceIPs": [record.source_ip] if record.source_ip else [],
    }
    if record.user_agent:
        event["userAgent"] = record.user_agent
    status = _status(record)
    if route is not None:
        event["objectRef"] = _object_ref(route, record, status)
    event["responseStatus"] = _response_status(record.code, status)
    event["requestReceivedTimestamp"] = _timestamp(record.received)
    event["stageTimestamp"] = _timestamp(record.finished)
    return event


def _route(path: str) -> ResourcePath | None:
    try:
        route = parse(path)
    except NotRoutable:
        return None
    return route if isinstance(route, ResourcePath) else None


def _verb(record: Record, route: ResourcePath | None) -> str:
    """Kubernetes' verb: create/update/patch/delete/deletecollection; lower-case methods off resources."""
    if record.websocket:
        return "create"
    if route is None:
        return record.method.lower()
    if record.method == "DELETE" and route.name is None:
        return "deletecollection"
    return MUTATING.get(record.method, record.method.lower())


def _object_ref(route: ResourcePath, record: Record, status: dict[str, Any] | None) -> dict[str, str]:
    resource = route.resource
    name = route.name or _created_name(record, status)
    ref = {"resource": resource.plural, "namespace": route.namespace or "", "name": name or "",
           "apiGroup": resource.group, "apiVersion": resource.version, "subresource": route.subresource or ""}
    return {key: value for key, value in ref.items() if value}


def _created_name(record: Record, status: dict[str, Any] | None) -> str | None:
    """The name a create gave, or would have given: the response's object or Status, else the request's."""
    if status is not None:
        name = (status.get("details") or {}).get("name")
        if name:
            return str(name)
    for chunks in (record.response, record.request):
        name = _metadata_name(_json(chunks))
        if name:
            return name
    return None


def _metadata_name(document: object) -> str | None:
    if isinstance(document, dict) and document.get("kind") != "Status":
        metadata = document.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
            return metadata["name"]
    return None


def _status(record: Record) -> dict[str, Any] | None:
    """The Status object a refusal answered with, if it did."""
    if record.code < 400:
        return None
    document = _json(record.response)
    return document if isinstance(document, dict) and document.get("kind") == "Status" else None


def _json(chunks: list[bytes]) -> object:
    """The JSON document in ``chunks``; None for another format, a broken body or one past MAX_PARSE."""
    if not chunks or sum(map(len, chunks)) > MAX_PARSE:
        return None
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):  # YAML, protobuf, bad JSON, nesting past the interpreter's limit
        return None


def _response_status(code: int, status: dict[str, Any] | None) -> dict[str, Any]:
    """metav1.Status as Kubernetes' audit shows it: the code, and for a refusal its reason and message."""
    result: dict[str, Any] = {"metadata": {}, "code": code}
    if status is not None:
        for key in ("status", "message", "reason"):
            if status.get(key):
                result[key] = status[key]
    return result


def line(record: Record) -> bytes:
    """The Event of ``record`` as one line of compact JSON."""
    return json.dumps(event(record), separators=(",", ":")).encode() + b"\n"


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """The audit file's writer: records in through ``record``, lines out from ``run``'s task."""

    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._send, self._receive = trio.open_memory_channel[Record](BUFFER)
        self._fd: int | None = None
        self._size = 0
        self._failing = False

    async def record(self, record: Record) -> None:
        """Queue a finished request's record; waits only when the writer is BUFFER records behind.

        Shielded while it waits: a request cancelled as it ends is still
        recorded; bounded: a stuck writer holds no request for long.
        """
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):  # the writer has stopped
            try:
                self._send.send_nowait(record)  # the usual case, without a checkpoint's cost
            except trio.WouldBlock:
                with trio.move_on_after(STOP_FLUSH_SECONDS, shield=True):
                    await self._send.send(record)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write batches until cancelled; then, shielded and bounded, what is still queued."""
        task_status.started()
        batch: list[Record] = []  # taken from the channel: written even when cancelled meanwhile
        try:
            while True:
                batch = [await self._receive.receive()]
                await trio.sleep(BATCH_WAIT)  # gather: one thread hand-off per batch, not per request
                batch += self._pending(BATCH - 1)
                with trio.CancelScope(shield=True):
                    await self._write(batch)
                batch = []
        finally:
            self._send.close()  # requests that end from now on go unrecorded, rather than wait for no one
            with trio.move_on_after(STOP_FLUSH_SECONDS, shield=True):
                batch += self._pending(BATCH - len(batch))
                while batch:
                    await self._write(batch)
                    batch = self._pending(BATCH)
            self._receive.close()
            self._close()  # a close(2) of a regular file does not block

    def _pending(self, limit: int) -> list[Record]:
        batch: list[Record] = []
        while len(batch) < limit:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        return batch

    async def _write(self, batch: list[Record]) -> None:
        data = []
        for n, record in enumerate(batch, 1):  # on the loop, a few records between checkpoints: see above
            try:
                data.append(line(record))
            except Exception:  # a bug: it must not stop the writer, which would take the API server down
                log.exception("audit log: cannot format the record of %s %s; left out", record.method, record.uri)
            if n % FORMAT_SLICE == 0:
                await trio.lowlevel.checkpoint()
        try:
            await trio.to_thread.run_sync(self.append, b"".join(data))
        except OSError as exc:
            await trio.to_thread.run_sync(self._close)
            if not self._failing:
                log.error("audit log %s: cannot write: %s; serving on, losing audit lines until it works",
                          self.path, exc.strerror or exc)
            self._failing = True
        else:
            if self._failing:
                log.warning("audit log %s: writing again", self.path)
            self._failing = False

    def write(self, batch: list[Record]) -> None:
        """Format ``batch`` and append it (blocks: for tests and tools, not the loop)."""
        self.append(b"".join(line(r) for r in batch))

    def append(self, data: bytes) -> None:
        """Append formatted lines with one write, rotating first when they would pass the bound.

        Blocks (a file): runs in a thread. OSError passes to the caller.
        """
        if self._fd is not None and self._moved():
            self._close()
        if self._fd is None:
            self._open()
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        view = memoryview(data)
        while view:
            assert self._fd is not None
            written = os.write(self._fd, view)
            self._size += written
            view = view[written:]

    def _open(self) -> None:
        # 0600: the log names users and what they did.
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size
        if self._size and os.pread(self._fd, 1, self._size - 1) != b"\n":
            # A line cut by a SIGKILL mid-write: end it, so the next line stays a line of its own.
            self._size += os.write(self._fd, b"\n")

    def _moved(self) -> bool:
        """Whether the file was removed or renamed (logrotate, an operator) since it was opened: then reopen."""
        assert self._fd is not None
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True

    def _rotate(self) -> None:
        """audit.log -> audit.log.1 -> ... -> audit.log.<keep>, the oldest dropped; then a new file."""
        self._close()
        old = [self.path.with_name(f"{self.path.name}.{n}") for n in range(1, self.keep + 1)]
        if not old:
            self.path.unlink(missing_ok=True)
        for n in range(len(old) - 1, 0, -1):
            if old[n - 1].exists():
                os.replace(old[n - 1], old[n])
        if old and self.path.exists():
            os.replace(self.path, old[0])
        self._open()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # nothing is buffered: a failing close loses nothing more
                os.close(fd)


class AuditMiddleware:
    """ASGI middleware: records each mutating request around ``app`` into ``audit``."""

    def __init__(self, app: App, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["method"] in MUTATING:
            return await self._http(scope, receive, send)
        if kind == "websocket" and _is_stream(scope["path"]):
            return await self._websocket(scope, receive, send)
        await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = _begin(scope)
        create = record.method == "POST"

        async def recording_receive() -> Message:
            message = await receive()
            if create and message.get("body"):
                record.request.append(message["body"])
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.code = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"audit-id", record.audit_id.encode())]}
            elif message["type"] == "http.response.body" and (create or record.code >= 400):
                record.response.append(message.get("body", b""))
            await send(message)

        await self._run(scope, recording_receive, recording_send, record)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = _begin(scope)
        record.websocket = True
        record.code = 403  # ASGI: closed before accepting is a 403 to the client

        async def recording_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                record.code = 101
            elif message["type"] == "websocket.http.response.start":
                record.code = message["status"]
            elif message["type"] == "websocket.http.response.body":
                record.response.append(message.get("body", b""))
            await send(message)

        await self._run(scope, receive, recording_send, record)

    async def _run(self, scope: Scope, receive: Receive, send: Send, record: Record) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if not record.code:
                record.code = 500  # the server answers an app that sent nothing (or failed) with a 500
            user = scope.get("nodeos.user")
            if user is not None:
                record.username, record.groups = user.name, tuple(user.groups)
            record.finished = time.time()
            await self.audit.record(record)


def _is_stream(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1] in STREAMS


def _begin(scope: Scope) -> Record:
    """A record of what the request says about itself; the rest comes as it is answered."""
    audit_id = user_agent = ""
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
        elif name == b"audit-id":
            audit_id = value.decode("latin-1")
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    uri = (raw + b"?" + query if query else raw).decode("latin-1")
    client = scope.get("client")
    return Record(audit_id=audit_id or str(uuid.uuid4()), method=scope.get("method", "GET"), uri=uri,
                  path=scope["path"], source_ip=client[0] if client else "", user_agent=user_agent,
                  received=time.time())


async def start_audit(nursery: trio.Nursery, config: Config) -> AuditLog | None:
    """The node's audit log with its writer task running in ``nursery``; None when ``[api] audit_log = ""``."""
    path = audit_path(config)
    if path is None:
        return None
    audit = AuditLog(path, config.api.audit_log_max_mb * 1024 * 1024, config.api.audit_log_keep)
    await nursery.start(audit.run)
    return audit


def audited(app: App, audit: AuditLog | None) -> App:
    """``app`` with its mutating requests recorded in ``audit``; ``app`` itself when there is no audit log."""
    return app if audit is None else AuditMiddleware(app, audit)
