"""A small client of etcd's v3 JSON gateway, for administration (members, snapshots).

The store backend has its own client, tuned for data; this one serves the
``nodeos etcd`` commands and the managed member's health check, where one
request at a time and clear errors matter more than speed.

Error handling: a connection failure, a timeout, or an error answer of the
gateway becomes ``EtcdError`` with the endpoint and etcd's own message, e.g.
``etcd at http://127.0.0.1:2379: etcdserver: member not found``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

import httpx

from nodeos.errors import NodeosError

__all__ = ["EtcdError", "Gateway", "TlsFiles"]

TIMEOUT = 10.0


class EtcdError(NodeosError):
    """etcd could not be reached or refused what was asked."""


TlsFiles = tuple[str, str, str]  # CA file, client certificate, client key


class Gateway:
    """``async with Gateway(endpoint) as gw: await gw.call("/v3/cluster/member/list")``."""

    def __init__(self, endpoint: str, tls: TlsFiles | None = None, *, timeout: float = TIMEOUT) -> None:
        self.endpoint = endpoint.rstrip("/")
        verify: ssl.SSLContext | bool = True
        if tls is not None:
            ca, cert, key = tls
            verify = ssl.create_default_context(cafile=ca)
            verify.load_cert_chain(cert, key)
        self._http = httpx.AsyncClient(base_url=self.endpoint, verify=verify, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``body`` to a gateway path; the answer as JSON."""
        try:
            response = await self._http.post(path, json=body or {})
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code != 200:
            raise EtcdError(f"etcd at {self.endpoint}: {_message(response.text)}")
        return response.json()

    async def get(self, path: str) -> dict[str, Any]:
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return response.json() if response.status_code == 200 else {}

    @asynccontextmanager
    async def stream(self, path: str, body: dict[str, Any] | None = None) -> AsyncIterator[AsyncIterator[dict]]:
        """A server-streaming call: each line of the answer is one JSON message, errors raised."""
        try:
            async with self._http.stream("POST", path, json=body or {}, timeout=httpx.Timeout(
                    TIMEOUT, read=None)) as response:
                if response.status_code != 200:
                    raise EtcdError(f"etcd at {self.endpoint}: {_message((await response.aread()).decode())}")
                yield self._messages(response)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    async def _messages(self, response: httpx.Response) -> AsyncIterator[dict]:
        async for line in response.aiter_lines():
            if not line.strip():
                continue
            message = json.loads(line)
            if "error" in message:
                raise EtcdError(f"etcd at {self.endpoint}: {_message(json.dumps(message['error']))}")
            yield message.get("result", message)

    def _unreachable(self, exc: httpx.HTTPError) -> EtcdError:
        return EtcdError(f"cannot reach etcd at {self.endpoint}: {exc or type(exc).__name__}")


def _message(text: str) -> str:
    """etcd's own words from an error answer (``{"error": "...", "message": "...", "code": N}``)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip() or "empty answer"
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)
    return str(data)
