"""Loading many new keys into etcd at once, for ``nodeos store migrate``.

``EtcdStore.create`` is one HTTP request and one raft proposal per key: a
few hundred keys a second on a busy machine, so 10,000 objects took half a
minute. A migration into an empty prefix needs no per-key answer, so this
writes a whole batch in one transaction: a ``create_revision == 0`` compare
for every key of the batch and a put for each. etcd applies it as a single
proposal, all or nothing; batches stay under etcd's default limits (128
operations per transaction, 1.5 MiB per request).

Failure handling follows ``EtcdStore``: a batch that never reached etcd
(connection refused, "no leader") is sent again to the next endpoint; one
whose outcome is unknown (the connection broke after sending, "leader
changed") is sent again too, and if its compare now fails, the batch's keys
are read back: holding exactly our values means the first try applied.
Anything else is a ``StoreError`` naming the key and the endpoints.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Sequence
from typing import Any, Self

import httpx
import trio

from nodeos.api.store.base import KeyValue
from nodeos.api.store.etcd import EtcdTLS
from nodeos.errors import StoreError

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_KEYS", "EtcdBulkCreate", "batches"]

MAX_BATCH_KEYS = 64  # each key is two operations (a compare and a put); etcd allows 128 per transaction
MAX_BATCH_BYTES = 512 * 1024  # of keys and values, before base64: well under etcd's 1.5 MiB request limit
BACKOFF = 0.2
_NOT_APPLIED = ("no leader", "not capable", "too many requests", "not enough started members")
_RETRY = (*_NOT_APPLIED, "leader changed", "request timed out", "timed out", "stopped", "unavailable")


def batches(items: Sequence[KeyValue]) -> list[list[KeyValue]]:
    """``items`` cut into transactions of at most MAX_BATCH_KEYS keys and MAX_BATCH_BYTES bytes."""
    out: list[list[KeyValue]] = []
    current: list[KeyValue] = []
    size = 0
    for kv in items:
        weight = len(kv.key) + len(kv.value)
        if current and (len(current) == MAX_BATCH_KEYS or size + weight > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(kv)
        size += weight
    if current:
        out.append(current)
    return out


class _Retry(Exception):
    def __init__(self, message: str, *, applied_maybe: bool) -> None:
        super().__init__(message)
        self.applied_maybe = applied_maybe


class EtcdBulkCreate:
    """``async with EtcdBulkCreate(endpoints, prefix) as bulk: await bulk.create(batch)``."""

    def __init__(self, endpoints: Sequence[str], *, prefix: str, tls: EtcdTLS | None = None,
                 timeout: float = 30.0) -> None:
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.prefix = prefix.rstrip("/")  # as EtcdStore keeps keys
        self.tls = tls
        self.timeout = timeout
        self._current = 0
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        verify: ssl.SSLContext | bool = True
        if self.tls is not None:
            try:
                verify = await trio.to_thread.run_sync(self.tls.ssl_context)
            except (OSError, ssl.SSLError) as exc:
                raise StoreError(f"cannot load the etcd TLS files: {exc}") from exc
        self._http = httpx.AsyncClient(verify=verify, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def create(self, batch: Sequence[KeyValue]) -> None:
        """Create every key of ``batch`` in one transaction; StoreError if any exists with another value."""
        keys = [_b64(self.prefix + kv.key) for kv in batch]
        puts = [{"request_put": {"key": k, "value": _b64(kv.value)}} for k, kv in zip(keys, batch, strict=True)]
        body = {
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"} for k in keys],
            "success": puts,
        }
        answer, uncertain = await self._call(body)
        if answer.get("succeeded"):
            return
        await self._check_present(batch, keys, uncertain)

    async def _check_present(self, batch: Sequence[KeyValue], keys: list[str], uncertain: bool) -> None:
        """The compare failed: some key exists. Fine only if an earlier try of ours wrote them all."""
        answer, _ = await self._call({"success": [{"request_range": {"key": k}} for k in keys]})
        found: dict[str, bytes] = {}
        for response in answer.get("responses") or []:
            for raw in (response.get("response_range") or {}).get("kvs") or []:
                found[base64.b64decode(raw["key"]).decode()] = base64.b64decode(raw.get("value", ""))
        mine = {self.prefix + kv.key: kv.value for kv in batch}
        foreign = sorted(k for k, value in found.items() if mine.get(k) != value)
        if foreign:
            raise StoreError(f"{foreign[0]} already exists in etcd with another value")
        if uncertain and found.keys() == mine.keys():
            return  # our first try applied; the answer was lost
        raise StoreError(f"{sorted(found)[0] if found else 'a key'} of the batch was written by someone else "
                         "during the migration")

    async def _call(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """POST a txn to the endpoint in use, failing over until ``timeout``; (answer, may have applied before)."""
        assert self._http is not None, "use EtcdBulkCreate as an async context manager"
        uncertain = False
        errors: dict[str, str] = {}
        with trio.move_on_after(self.timeout):
            while True:
                endpoint = self.endpoints[self._current]
                try:
                    return await self._post(endpoint, body), uncertain
                except _Retry as exc:
                    errors[endpoint] = str(exc)
                    uncertain = uncertain or exc.applied_maybe
                self._current = (self._current + 1) % len(self.endpoints)
                if self._current == 0:
                    await trio.sleep(BACKOFF)
        detail = "; ".join(f"{e}: {m}" for e, m in errors.items()) or "no answer in time"
        raise StoreError(f"etcd unreachable at {', '.join(self.endpoints)} ({detail})")

    async def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        try:
            response = await self._http.post(f"{endpoint}/v3/kv/txn", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Retry(str(exc) or type(exc).__name__, applied_maybe=False) from exc
        except httpx.TransportError as exc:
            raise _Retry(str(exc) or type(exc).__name__, applied_maybe=True) from exc
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = {}
        if response.status_code == 200 and isinstance(answer, dict) and "error" not in answer:
            return answer
        message = str(answer.get("message") or answer.get("error") or "") if isinstance(answer, dict) else ""
        message = message or f"HTTP {response.status_code}"
        lowered = message.lower()
        if response.status_code in (502, 503, 504) or any(word in lowered for word in _RETRY):
            raise _Retry(message, applied_maybe=not any(word in lowered for word in _NOT_APPLIED))
        raise StoreError(f"etcd at {endpoint}: {message}")


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()
