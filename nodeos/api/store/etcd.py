"""The etcd store: the Store interface over etcd's v3 JSON gateway, for a highly available control plane.

Design notes
------------
- **One translation, no redesign.** ``base.Store`` was shaped after etcd, so
  each method is one etcd request: create and update are a txn whose compare
  is the CAS (``create_revision == 0``, ``mod_revision == expected``) and whose
  failure branch reads the key, so KeyExists / KeyNotFound / RevisionMismatch
  are told apart in the same round trip. Revisions are etcd's.
- **Keys.** Every store key is kept under ``prefix`` (``/nodeos/core/pods/...``)
  so several clusters, or other users, can share one etcd; it is stripped on
  the way out.
- **The gateway, not gRPC.** httpx (already a dependency) speaks the JSON
  gateway every etcd 3.4 member serves on its client URL; one
  ``httpx.AsyncClient`` keeps a pool of connections per member. Large answers
  (a listing page) are parsed and base64-decoded in a worker thread so the trio
  loop never stalls on a 5 MB page.
- **Failover.** Endpoints are used in turn: the store sticks to one until it
  fails (connection refused or broken, a timeout, or etcd saying "no leader",
  "leader changed", "request timed out"...), then moves to the next and retries,
  with a short back-off once every endpoint has failed, until
  ``request_timeout`` has passed; then ``StoreError`` names every endpoint.
  One try waits at most ``attempt_timeout`` (2 s) for an answer: a follower
  whose leader just died holds a write until etcd's own timeout (~6 s), while
  another member has a new leader within an election timeout.
- **Retrying writes.** Reads are idempotent and simply retried. A write whose
  outcome is unknown (the request may have reached etcd: a read timeout, a
  broken connection after sending, "leader changed", "request timed out") is
  re-issued too, because every write is a compare-and-swap: if the first try
  applied, the compare of the second fails and its failure branch shows the
  key as it is now. Then the outcome is decided from that key: for an update,
  the key holding exactly our value at a revision after ``expected_revision``
  means ours applied; for a create, our value at ``create_revision ==
  mod_revision``; for a delete, the key being gone. A concurrent writer storing
  byte-identical bytes in that same second is indistinguishable, and harmless.
  Failures that provably never reached etcd (connection refused, "no leader")
  are retried without any doubt. Left open, as in etcd's own clients: a key
  created by the first try and deleted by someone else before the retry is
  created again; an unconditional delete (no ``expected_revision``; the API
  always passes one) re-issued may delete a key re-created in between.
- **Watch.** One streaming ``POST /v3/watch`` over the whole prefix, with
  ``prev_kv`` so DELETED carries the last value. When the stream breaks (its
  member died or lost its leader: the ``hasleader`` metadata makes etcd cancel
  watches on a member cut off from the quorum) it is reopened on the next
  endpoint from the last revision delivered, so the caller sees no gap and no
  duplicate. History older than etcd's compaction raises ``Compacted``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from nodeos.api.store.base import KeyValue, StoreEvent
from nodeos.errors import Compacted, KeyExists, KeyNotFound, RevisionMismatch, StoreError

__all__ = ["EtcdStore", "EtcdTLS"]

PAGE = 5000  # keys per listing page: a 100k-object listing is 20 answers, not one giant one
PARSE_IN_THREAD = 64 * 1024  # answers larger than this are decoded off the trio loop
BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)
# TCP keepalive: a member whose host vanished (no RST ever comes) breaks its connections,
# and so its watch stream, after ~25 s instead of the kernel's two hours.
KEEPALIVE = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
]
# etcd metadata through the gateway: cancel watches (and fail requests) on a member without a leader.
REQUIRE_LEADER = {"Grpc-Metadata-hasleader": "true"}

# etcd answers that say the request was never proposed: safe to retry even for a write.
_NOT_APPLIED = ("no leader", "not capable", "too many requests", "not enough started members")
# answers that say "try another member", the outcome of a write being unknown.
_RETRY = (*_NOT_APPLIED, "leader changed", "request timed out", "timed out", "stopped", "unhealthy", "unavailable")


@dataclass(frozen=True)
class EtcdTLS:
    """Files for https endpoints: the CA that signed etcd's certificates, and
    optionally a client certificate and key (etcd's ``--client-cert-auth``)."""

    ca_file: Path | str | None = None
    cert_file: Path | str | None = None
    key_file: Path | str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """Reads the files: call it in a worker thread."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file:
            context.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        return context


class _Retry(Exception):
    """One endpoint failed; another may do. ``applied_maybe``: the request may
    have reached etcd (matters for writes only)."""

    def __init__(self, message: str, *, applied_maybe: bool) -> None:
        super().__init__(message)
        self.applied_maybe = applied_maybe


class _RangeCompacted(Exception):
    """A read at a revision that etcd has compacted away."""


@dataclass
class _Answer:
    body: dict[str, Any]
    uncertain: bool  # an earlier try of this write may have applied


class EtcdStore:
    """A Store on an etcd cluster. Construct, ``await start()``, use, ``await close()``."""

    shared = True  # other masters write to the same etcd: the registry must not trust its cache alone

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        prefix: str = "/nodeos",
        tls: EtcdTLS | None = None,
        request_timeout: float = 5.0,
        attempt_timeout: float = 2.0,
    ) -> None:
        if not endpoints:
            raise ValueError("EtcdStore needs at least one endpoint")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._prefix = prefix.rstrip("/")
        self._tls = tls
        self._timeout = request_timeout
        self._attempt_timeout = min(attempt_timeout, request_timeout)
        self._current = 0  # the endpoint in use; moves on failure
        self._http: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def endpoint(self) -> str:
        """The endpoint in use: the one the next request goes to."""
        return self.endpoints[self._current]

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Builds the HTTP client; etcd itself is first reached by the first call,
        so a master can start while its etcd members are still electing."""
        verify: ssl.SSLContext | bool = True
        if self._tls is not None:
            try:
                verify = await trio.to_thread.run_sync(self._tls.ssl_context)
            except (OSError, ssl.SSLError) as exc:
                raise StoreError(f"cannot load the etcd TLS files: {exc}") from exc
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(verify=verify, socket_options=KEEPALIVE),
            timeout=self._attempt_timeout,
            headers=REQUIRE_LEADER,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._http is not None:
            await self._http.aclose()

    # -- keys ----------------------------------------------------------------

    def _key(self, key: str) -> str:
        return _b64(self._prefix + key)

    def _range_end(self, prefix: str) -> str:
        return _b64(_prefix_end(self._prefix + prefix))

    def _strip(self, etcd_key: str) -> str:
        return _unb64(etcd_key).decode()[len(self._prefix) :]

    def _kvs(self, raws: list[dict[str, Any]]) -> list[KeyValue]:
        return [self._kv(raw) for raw in raws]

    def _kv(self, raw: dict[str, Any]) -> KeyValue:
        return KeyValue(self._strip(raw["key"]), _unb64(raw.get("value", "")), int(raw.get("mod_revision", 0)))

    # -- the one request loop ----------------------------------------------------

    async def _call(self, path: str, body: dict[str, Any], *, write: bool = False) -> _Answer:
        """POST to the endpoint in use, failing over until ``request_timeout``.

        A write is re-issued like a read (see the module notes for why that is
        safe); the answer says whether an earlier try may have applied.
        """
        if self._http is None or self._closed:
            raise StoreError("the etcd store is not started or already closed")
        uncertain = False
        errors: dict[str, str] = {}
        attempt = 0
        with trio.move_on_after(self._timeout):
            while True:
                endpoint = self.endpoints[self._current]
                try:
                    return _Answer(await self._post(endpoint, path, body), uncertain)
                except _Retry as exc:
                    errors[endpoint] = str(exc)
                    uncertain = uncertain or (write and exc.applied_maybe)
                self._current = (self._current + 1) % len(self.endpoints)
                attempt += 1
                if attempt % len(self.endpoints) == 0:  # a full round failed: wait a little
                    await trio.sleep(BACKOFF[min(attempt // len(self.endpoints) - 1, len(BACKOFF) - 1)])
        # Out of time, perhaps in the middle of a try: a write may then have
        # applied or not, as with etcd's own "request timed out".
        raise self._unreachable(errors)

    def _unreachable(self, errors: dict[str, str]) -> StoreError:
        detail = "; ".join(f"{e}: {msg}" for e, msg in errors.items())
        return StoreError(
            f"etcd unreachable at {', '.join(self.endpoints)} for {self._timeout:g} s"
            + (f" ({detail})" if detail else "")
        )

    async def _post(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        try:
            response = await self._http.send(_json_request(self._http, endpoint + path, body))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Retry(_describe(exc), applied_maybe=False) from exc
        except httpx.TransportError as exc:  # sent, perhaps received: the outcome is unknown
            raise _Retry(_describe(exc), applied_maybe=True) from exc
        content = response.content
        if len(content) > PARSE_IN_THREAD:
            answer = await trio.to_thread.run_sync(_parse, content)
        else:
            answer = _parse(content)
        if response.status_code == 200 and isinstance(answer, dict) and "error" not in answer:
            return answer
        message = str(answer.get("message") or answer.get("error") or response.text) if isinstance(answer, dict) else ""
        message = message or f"HTTP {response.status_code}"
        if "compacted" in message:
            raise _RangeCompacted(message)
        lowered = message.lower()
        if response.status_code in (502, 503, 504) or any(word in lowered for word in _RETRY):
            raise _Retry(message, applied_maybe=not any(word in lowered for word in _NOT_APPLIED))
        raise StoreError(f"etcd at {endpoint}: {message}")

    # -- reads ---------------------------------------------------------------

    async def current_revision(self) -> int:
        # A range over the prefix key itself: it never exists, so the answer is
        # only the header, whose revision is the cluster's current one.
        answer = await self._call("/v3/kv/range", {"key": _b64(self._prefix), "keys_only": True, "limit": 1})
        return _revision(answer.body)

    async def get(self, key: str) -> KeyValue | None:
        answer = await self._call("/v3/kv/range", {"key": self._key(key)})
        kvs = answer.body.get("kvs") or []
        return self._kv(kvs[0]) if kvs else None

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Paged at the revision of the first page, so the pages form one
        consistent snapshot; a compaction in between starts the listing over."""
        while True:
            try:
                return await self._list_once(prefix)
            except _RangeCompacted:
                continue

    async def _list_once(self, prefix: str) -> tuple[list[KeyValue], int]:
        request: dict[str, Any] = {"key": self._key(prefix), "range_end": self._range_end(prefix), "limit": PAGE}
        items: list[KeyValue] = []
        revision = 0
        while True:
            answer = await self._call("/v3/kv/range", request)
            kvs = answer.body.get("kvs") or []
            if len(kvs) > 256:
                items.extend(await trio.to_thread.run_sync(self._kvs, kvs))
            else:
                items.extend(self._kvs(kvs))
            if not revision:
                revision = _revision(answer.body)
                request["revision"] = revision
            if not answer.body.get("more") or not kvs:
                return items, revision
            request["key"] = _b64(_unb64(kvs[-1]["key"]).decode() + "\0")

    # -- writes --------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        k = self._key(key)
        answer = await self._call(
            "/v3/kv/txn",
            {
                "compare": [{"target": "CREATE", "key": k, "result": "EQUAL", "create_revision": 0}],
                "success": [{"request_put": {"key": k, "value": _b64b(value)}}],
                "failure": [{"request_range": {"key": k}}],
            },
            write=True,
        )
        if answer.body.get("succeeded"):
            return _revision(answer.body)
        current = _failure_kv(answer.body)
        assert current is not None, "create failed but the key is absent"
        fresh = current.get("create_revision") == current.get("mod_revision")
        if answer.uncertain and fresh and _unb64(current.get("value", "")) == value:
            return int(current["mod_revision"])  # our first try applied
        raise KeyExists(key)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        k = self._key(key)
        answer = await self._call(
            "/v3/kv/txn",
            {
                "compare": [{"target": "MOD", "key": k, "result": "EQUAL", "mod_revision": expected_revision}],
                "success": [{"request_put": {"key": k, "value": _b64b(value)}}],
                "failure": [{"request_range": {"key": k}}],
            },
            write=True,
        )
        if answer.body.get("succeeded"):
            return _revision(answer.body)
        current = _failure_kv(answer.body)
        if current is None:
            raise KeyNotFound(key)
        now = int(current.get("mod_revision", 0))
        if answer.uncertain and now > expected_revision and _unb64(current.get("value", "")) == value:
            return now  # our first try applied
        raise RevisionMismatch(key, now)

    async def delete(self, key: str, expected_revision: int | None = None) -> int:
        k = self._key(key)
        if expected_revision is None:
            answer = await self._call("/v3/kv/deleterange", {"key": k}, write=True)
            if int(answer.body.get("deleted", 0)) or answer.uncertain:
                return _revision(answer.body)
            raise KeyNotFound(key)
        answer = await self._call(
            "/v3/kv/txn",
            {
                "compare": [{"target": "MOD", "key": k, "result": "EQUAL", "mod_revision": expected_revision}],
                "success": [{"request_delete_range": {"key": k}}],
                "failure": [{"request_range": {"key": k}}],
            },
            write=True,
        )
        if answer.body.get("succeeded"):
            return _revision(answer.body)
        current = _failure_kv(answer.body)
        if current is None:
            if answer.uncertain:
                return _revision(answer.body)  # gone: our first try applied (the header is at or past it)
            raise KeyNotFound(key)
        raise RevisionMismatch(key, int(current.get("mod_revision", 0)))

    async def compact(self, revision: int) -> None:
        with contextlib.suppress(_RangeCompacted):  # already compacted at or past it
            await self._call("/v3/kv/compaction", {"revision": revision})

    # -- watch ---------------------------------------------------------------

    async def watch(self, from_revision: int) -> AsyncIterator[StoreEvent]:
        """Follows every change after ``from_revision``, reopening the stream on
        the next endpoint when one breaks, from the last revision delivered."""
        last = from_revision
        errors: dict[str, str] = {}
        failures = 0
        down_since: float | None = None  # when the last working stream broke
        while not self._closed:
            endpoint = self.endpoints[self._current]
            try:
                async with contextlib.aclosing(self._watch_stream(endpoint, last)) as stream:
                    async for event in stream:
                        if event is None:  # the stream is open: this endpoint works
                            failures, down_since = 0, None
                            continue
                        last = event.revision
                        yield event
                errors[endpoint] = "the stream ended"
            except _Retry as exc:
                errors[endpoint] = str(exc)
            if self._closed:
                return
            now = trio.current_time()
            down_since = now if down_since is None else down_since
            if now - down_since > self._timeout:
                raise self._unreachable(errors)
            self._current = (self._current + 1) % len(self.endpoints)
            failures += 1
            if failures % len(self.endpoints) == 0:  # a full round failed: wait a little
                await trio.sleep(BACKOFF[min(failures // len(self.endpoints) - 1, len(BACKOFF) - 1)])

    async def _watch_stream(self, endpoint: str, last: int) -> AsyncIterator[StoreEvent | None]:
        """One watch stream on one endpoint: None once etcd confirmed it, then events."""
        assert self._http is not None
        request = {
            "create_request": {
                "key": self._key("/"),
                "range_end": self._range_end("/"),
                "start_revision": last + 1,
                "prev_kv": True,
                "progress_notify": True,
            }
        }
        # No read timeout: a quiet cluster sends nothing for minutes. A dead
        # member closes the connection; one cut off from its leader cancels
        # the watch (hasleader), which ends the stream.
        timeout = httpx.Timeout(self._attempt_timeout, read=None)
        http_request = _json_request(self._http, endpoint + "/v3/watch", request, timeout=timeout)
        try:
            response = await self._http.send(http_request, stream=True)
        except httpx.TransportError as exc:
            raise _Retry(_describe(exc), applied_maybe=False) from exc
        chunks = response.aiter_bytes()
        try:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")
                raise _Retry(f"watch refused: HTTP {response.status_code} {text[:200]}", applied_maybe=False)
            lines = _Lines()
            async for chunk in chunks:
                for line in lines.feed(chunk):
                    if len(line) > PARSE_IN_THREAD:  # a backlog of many events: decode it off the loop
                        items = await trio.to_thread.run_sync(self._watch_line, line, last)
                    else:
                        items = self._watch_line(line, last)
                    for item in items:
                        if item is not None:
                            last = item.revision
                        yield item
        except httpx.TransportError as exc:
            raise _Retry(_describe(exc), applied_maybe=False) from exc
        finally:
            await _close_stream(response, chunks)

    def _watch_line(self, line: bytes, last: int) -> list[StoreEvent | None]:
        """What one message of the watch stream means: None for "created", events, or an error."""
        try:
            message = json.loads(line)
        except ValueError as exc:
            raise _Retry(f"watch: not JSON: {line[:100]!r}", applied_maybe=False) from exc
        if "error" in message:
            raise _Retry(f"watch: {message['error']}", applied_maybe=False)
        result = message.get("result") or {}
        compacted = int(result.get("compact_revision", 0))
        if compacted:
            raise Compacted(last, compacted)
        out: list[StoreEvent | None] = [None] if result.get("created") else []
        for raw in result.get("events") or []:
            event = self._event(raw)
            if event.revision > last:  # a resumed stream never repeats one
                last = event.revision
                out.append(event)
        if result.get("canceled"):
            reason = result.get("cancel_reason", "no reason given")
            raise _Retry(f"watch canceled: {reason}", applied_maybe=False)
        return out

    def _event(self, raw: dict[str, Any]) -> StoreEvent:
        kv = raw["kv"]
        prev = raw.get("prev_kv")
        prev_value = _unb64(prev.get("value", "")) if prev else None
        key = self._strip(kv["key"])
        revision = int(kv["mod_revision"])
        if raw.get("type") == "DELETE":
            return StoreEvent("DELETED", key, prev_value or b"", revision, prev_value)
        value = _unb64(kv.get("value", ""))
        if kv.get("create_revision") == kv.get("mod_revision"):
            return StoreEvent("ADDED", key, value, revision)
        return StoreEvent("MODIFIED", key, value, revision, prev_value)


def _json_request(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: httpx.Timeout | None = None
) -> httpx.Request:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if timeout is None:
        request = http.build_request("POST", url, content=data, headers=headers)
    else:
        request = http.build_request("POST", url, content=data, headers=headers, timeout=timeout)
    request.stream = _Body(data)
    return request


class _Body(httpx.AsyncByteStream):
    """A request body sent without an async generator. httpx's own is one, and
    a request cancelled or cut off mid-send leaves it unfinished, to be warned
    about (ResourceWarning) whenever the garbage collector finds it."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._sent = False

    def __aiter__(self) -> _Body:
        self._sent = False
        return self

    async def __anext__(self) -> bytes:
        if self._sent:
            raise StopAsyncIteration
        self._sent = True
        return self._data


async def _close_stream(response: httpx.Response, chunks: AsyncIterator[bytes]) -> None:
    """Close a streamed response and run its byte iterator to its end, so
    httpx's nested generators finish now instead of being collected unfinished."""
    with trio.CancelScope(shield=True, deadline=trio.current_time() + 1.0), contextlib.suppress(Exception):
        await response.aclose()
        async for _ in chunks:
            pass


class _Lines:
    """Cuts a byte stream into lines however the chunks split it (a message
    across chunks, or several in one). The gateway ends each JSON message with
    a newline and JSON has none inside, so a message is complete at its newline;
    only the new bytes are scanned, so a 10 MB message costs one pass, not one
    parse attempt per chunk."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        start = len(self._buffer)
        self._buffer += chunk
        lines = []
        cut = 0
        while (end := self._buffer.find(b"\n", start)) != -1:
            line = bytes(self._buffer[cut:end]).strip()
            if line:
                lines.append(line)
            cut = start = end + 1
        del self._buffer[:cut]
        return lines


def _failure_kv(body: dict[str, Any]) -> dict[str, Any] | None:
    """The key as read by a txn's failure branch, or None when it is absent."""
    responses = body.get("responses") or [{}]
    kvs = (responses[0].get("response_range") or {}).get("kvs") or []
    return kvs[0] if kvs else None


def _revision(body: dict[str, Any]) -> int:
    return int(body["header"].get("revision", 0))


def _parse(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return {}


def _describe(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64b(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _prefix_end(prefix: str) -> str:
    """The first key after every key starting with ``prefix`` (etcd's range_end).
    Store keys are ASCII paths, so bumping the last character is enough."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
