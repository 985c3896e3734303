"""One HTTP request as the handlers see it, and the responses they send."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import yaml

from nodeos.api.auth.user import User
from nodeos.api.protobuf import decode_object
from nodeos.errors import ApiError

MAX_BODY = 3 * 1024 * 1024  # Kubernetes' limit for a request body

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    receive: Receive
    _body: bytes | None = field(default=None, repr=False)
    # The ASGI scope, where authentication puts the caller (``nodeos.user``) after the request is made.
    scope: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_scope(cls, scope: dict[str, Any], receive: Receive) -> Request:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        return cls(scope["method"], scope["path"], query, headers, receive, scope=scope)

    @property
    def user(self) -> User | None:
        """The authenticated caller; None before authentication."""
        return self.scope.get("nodeos.user")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json").split(";")[0].strip().lower()

    async def body(self) -> bytes:
        if self._body is None:
            declared = self.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > MAX_BODY:
                raise ApiError.too_large(MAX_BODY)
            chunks, size = [], 0
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    raise ApiError.too_large(MAX_BODY)
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def document(self) -> Any:
        """The body decoded as JSON or YAML, by its content type."""
        raw = await self.body()
        if not raw.strip():
            raise ApiError.bad_request("the request body is empty")
        kind = self.content_type
        if kind in ("application/yaml", "application/x-yaml", "text/yaml"):
            return _load_yaml(raw)
        if kind in ("application/json", *PATCH_TYPES) or kind.endswith("+json"):
            return _load_json(raw)
        if kind == "application/apply-patch+yaml":
            raise ApiError.unsupported_media_type(f"{kind} (server-side apply is not supported; "
                                                  "use client-side kubectl apply)")
        if kind == "application/vnd.kubernetes.protobuf":
            return decode_object(raw)
        raise ApiError.unsupported_media_type(kind)

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("true", "1")

    def int_param(self, name: str) -> int | None:
        value = self.query.get(name)
        if value in (None, ""):
            return None
        try:
            number = int(value)
        except ValueError:
            raise ApiError.bad_request(f'{name}: invalid value "{value}": must be an integer') from None
        if number < 0:
            raise ApiError.bad_request(f"{name}: invalid value {number}: must not be negative")
        return number


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        message = str(exc).splitlines()[0][:200]
        raise ApiError.bad_request(f"the request body is not valid JSON: {message}") from None


def _load_yaml(raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        message = str(exc).splitlines()[0][:200]
        raise ApiError.bad_request(f"the request body is not valid YAML: {message}") from None


async def send_bytes(send: Send, status: int, body: bytes, content_type: str = "application/json",
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-cache, private")]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any) -> None:
    await send_bytes(send, status, json.dumps(obj, separators=(",", ":")).encode())


async def send_error(send: Send, error: ApiError) -> None:
    extra = [(b"retry-after", str(error.retry_after).encode())] if error.retry_after else []
    if error.code == 413:
        # The rest of the oversized body is still on its way and will not be
        # read: the connection cannot carry another request.
        extra.append((b"connection", b"close"))
    await send_bytes(send, error.code, json.dumps(error.status()).encode(), extra=extra)
