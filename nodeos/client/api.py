"""An async client for the Kubernetes-compatible API, over httpx.

It speaks the Kubernetes wire protocol (paths, Status errors, line-delimited
watch, Table responses), not nodeos internals, so it works against any
conforming server. Objects travel as plain dicts: components read and write
Kubernetes JSON, and a typed model layer would only have to be kept in step.

Namespaces: calls on a single namespaced object default to the connection's
namespace; ``list`` and ``watch`` with ``namespace=None`` span all namespaces.

Error handling: a non-2xx answer raises ``nodeos.errors.ApiError`` built from
the server's Status (or from the HTTP code when the body is not a Status);
a connection that cannot be made or breaks raises ``ApiUnavailable``, which
callers may retry. A watch ``ERROR`` event raises ``ApiError`` too, notably
code 410 when the requested resourceVersion is too old.

Several servers: given ``servers``, the client sticks to one and fails over
to the next when it fails, sending the request again there when that is safe
(``nodeos.client.failover`` says when). An error is raised only once no
server could take the request, or when sending it again might apply it twice.
A watch fails over when it opens; one that breaks midway raises
``ApiUnavailable`` after the switch, and the caller (an ``Informer``) watches
again from its last resourceVersion, now on the next server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from itertools import count
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import trio

from nodeos.api.kinds import Resource
from nodeos.client.failover import (
    CONNECT_TIMEOUT,
    KEEPALIVE,
    WATCH_SILENCE,
    Server,
    ServerList,
    resendable,
    switches_on_answer,
)
from nodeos.client.kubeconfig import Connection
from nodeos.errors import ApiError, ConfigError, NodeosError
from nodeos.httpbody import OneChunkBody

ApiObject = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
# client-go's messages for error answers that carry no Status.
_HTTP_REASONS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource version is too old"),
    415: ("UnsupportedMediaType", "the server responded with the status code 415"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    500: ("InternalError", "an error on the server has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


class ApiUnavailable(NodeosError):
    """The API server could not be reached, or the connection broke: retry later."""

    def __init__(self, server: str, message: str, *, refused: bool = False, unsent: bool = False) -> None:
        super().__init__(message)
        self.server = server  # host:port, as kubectl names it in messages
        self.refused = refused
        self.unsent = unsent  # no connection was made: the server provably never saw the request


def resource_path(res: Resource, namespace: str | None = None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """The URL path of a collection, an object or one of its subresources."""
    parts = ["/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"]
    if res.namespaced and namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(res.plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def status_error(status: Mapping[str, Any], code: int | None = None) -> ApiError:
    """The ApiError a Kubernetes Status object describes."""
    details = status.get("details") or {}
    return ApiError(
        code=int(status.get("code") or code or 500),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        details=dict(details),
        retry_after=details.get("retryAfterSeconds"),
    )


def _response_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return status_error(body, response.status_code)
    code = response.status_code
    reason, default = _HTTP_REASONS.get(code, ("", f"the server responded with the status code {code}"))
    retry = response.headers.get("Retry-After")
    return ApiError(code, reason, response.text.strip() or default,
                    retry_after=int(retry) if retry and retry.isdigit() else None)


def _refused(exc: BaseException | None, depth: int = 0) -> bool:
    """Whether a connect error was a refusal, wherever the OS error sits in the chain
    (trio reports one error per address tried, grouped under a summary)."""
    if exc is None or depth > 8:
        return False
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return True
    if isinstance(exc, BaseExceptionGroup) and any(_refused(e, depth + 1) for e in exc.exceptions):
        return True
    return _refused(exc.__cause__ or exc.__context__, depth + 1)


def _params(params: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


class ApiClient:
    """A connection pool to the API server; use as ``async with ApiClient(conn) as api``.

    ``servers`` (URLs, in order of preference) replaces ``conn.server`` by
    several servers to fail over between; ``conn`` still gives the
    credentials and the default namespace.
    """

    def __init__(self, conn: Connection, *, servers: Sequence[str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0,
                 user_agent: str = "nodeos") -> None:
        self.conn = conn
        urls = tuple(servers or (conn.server,))
        # With somewhere else to go, do not wait the whole timeout for a connection.
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)) if len(urls) > 1 \
            else httpx.Timeout(timeout)
        headers = {"Accept": "application/json", "User-Agent": user_agent}
        if conn.token:
            headers["Authorization"] = f"Bearer {conn.token}"
        verify = self._verify(conn, urls, transport)
        self._servers = ServerList([self._server(url, headers, verify, transport, several=len(urls) > 1)
                                    for url in urls])

    def _server(self, url: str, headers: dict[str, str], verify: Any,
                transport: httpx.AsyncBaseTransport | None, *, several: bool) -> Server:
        if transport is None and several:
            # httpx's own transport, but noticing a vanished host (see KEEPALIVE).
            transport = httpx.AsyncHTTPTransport(verify=verify, socket_options=KEEPALIVE)
        http = httpx.AsyncClient(base_url=url, headers=headers, timeout=self._timeout, verify=verify,
                                 transport=transport)
        return Server(url, urlsplit(url).netloc, http)

    @property
    def server(self) -> str:
        """The URL of the server in use."""
        return self._servers.current[1].url

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(server.url for server in self._servers.servers)

    @staticmethod
    def _verify(conn: Connection, urls: Sequence[str], transport: httpx.AsyncBaseTransport | None) -> Any:
        if transport is not None or not any(url.startswith("https://") for url in urls):
            return True
        try:
            return conn.ssl_context()  # one context for every server: they share the cluster's CA
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigError(f"cannot load TLS material for {', '.join(urls)}: {exc}") from exc

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._servers.aclose()

    # -- raw access ---------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send one request; raise ApiError on an error answer."""
        for attempt in count(1):
            index, server = self._servers.current
            request = server.http.build_request(method, path, params=_params(params or {}), json=json,
                                                content=content, headers=headers)
            request.stream = OneChunkBody(request.content)
            try:
                response = await server.http.send(request)
            except httpx.TransportError as exc:
                unavailable = _unavailable(server.host, exc)
                if self._try_next(index, method, unavailable, attempt):
                    continue
                raise unavailable from exc
            if not response.is_error:
                return response
            error = _response_error(response)
            if not self._try_next(index, method, error, attempt):
                raise error
        raise AssertionError("unreachable")

    def _try_next(self, index: int, method: str, error: ApiError | ApiUnavailable, attempt: int) -> bool:
        """Switch away from server ``index`` if ``error`` says it failed; True if the request
        should now go to the next server (one not tried yet, and safe to send again)."""
        if isinstance(error, ApiError) and not switches_on_answer(error.code, error.retry_after):
            return False
        self._servers.failed(index, str(error))
        unsent = isinstance(error, ApiUnavailable) and error.unsent
        return attempt < len(self._servers) and resendable(method, unsent=unsent)

    @asynccontextmanager
    async def stream(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                     headers: Mapping[str, str] | None = None,
                     read_timeout: float | None = None) -> AsyncIterator[httpx.Response]:
        """A response whose body is read as it arrives (watches, followed logs).

        Fails over like ``request`` until the response starts; a stream that
        breaks later raises ``ApiUnavailable`` once the client has switched.
        """
        timeout = httpx.Timeout(connect=self._timeout.connect, read=read_timeout, write=self._timeout.write,
                                pool=self._timeout.pool)
        index, server, response = await self._open_stream(method, path, params, headers, timeout)
        try:
            yield response
        except httpx.TransportError as exc:
            unavailable = _unavailable(server.host, exc)
            self._servers.failed(index, str(unavailable))
            raise unavailable from exc
        finally:
            await response.aclose()

    async def _open_stream(self, method: str, path: str, params: Mapping[str, Any] | None,
                           headers: Mapping[str, str] | None,
                           timeout: httpx.Timeout) -> tuple[int, Server, httpx.Response]:
        for attempt in count(1):
            index, server = self._servers.current
            request = server.http.build_request(method, path, params=_params(params or {}), headers=headers,
                                                timeout=timeout)
            try:
                response = await server.http.send(request, stream=True)
                if not response.is_error:
                    return index, server, response
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                unavailable = _unavailable(server.host, exc)
                if self._try_next(index, method, unavailable, attempt):
                    continue
                raise unavailable from exc
            error = _response_error(response)
            if not self._try_next(index, method, error, attempt):
                raise error
        raise AssertionError("unreachable")

    async def _json(self, method: str, path: str, **kwargs: Any) -> ApiObject:
        return (await self.request(method, path, **kwargs)).json()

    def _ns(self, res: Resource, namespace: str | None, obj: Mapping[str, Any] | None = None) -> str | None:
        if not res.namespaced:
            return None
        meta = (obj or {}).get("metadata") or {}
        return namespace or meta.get("namespace") or self.conn.namespace

    # -- objects --------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> ApiObject:
        return await self._json("GET", resource_path(res, self._ns(res, namespace), name))

    async def create(self, res: Resource, obj: ApiObject, namespace: str | None = None) -> ApiObject:
        return await self._json("POST", resource_path(res, self._ns(res, namespace, obj)), json=obj)

    async def update(self, res: Resource, obj: ApiObject) -> ApiObject:
        """Replace the object; its metadata.resourceVersion makes this compare-and-swap."""
        path = resource_path(res, self._ns(res, None, obj), obj["metadata"]["name"])
        return await self._json("PUT", path, json=obj)

    async def update_status(self, res: Resource, obj: ApiObject) -> ApiObject:
        path = resource_path(res, self._ns(res, None, obj), obj["metadata"]["name"], "status")
        return await self._json("PUT", path, json=obj)

    async def patch(self, res: Resource, name: str, patch: Any, patch_type: PatchType = "merge",
                    namespace: str | None = None, subresource: str | None = None) -> ApiObject:
        path = resource_path(res, self._ns(res, namespace), name, subresource)
        return await self._json("PATCH", path, content=json.dumps(patch).encode(),
                                headers={"Content-Type": PATCH_CONTENT_TYPES[patch_type]})

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None) -> ApiObject:
        """Delete; returns the object (graceful or finalized deletion) or a Success Status."""
        options: ApiObject = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        return await self._json("DELETE", resource_path(res, self._ns(res, namespace), name), json=options)

    async def bind(self, namespace: str, pod_name: str, node_name: str) -> ApiObject:
        """Assign a pod to a node, as the scheduler does (``pods/NAME/binding``)."""
        binding = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod_name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod_name, safe='')}/binding"
        return await self._json("POST", path, json=binding)

    # -- collections ----------------------------------------------------------

    async def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_: str | None = None) -> ApiObject:
        """One page of a collection: the List object, with metadata.continue if more remain."""
        params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                  "limit": limit, "continue": continue_}
        return await self._json("GET", resource_path(res, namespace), params=params)

    async def list_all(self, res: Resource, namespace: str | None = None, *,
                       label_selector: str | None = None, field_selector: str | None = None,
                       page_size: int = 500) -> ApiObject:
        """The whole collection as one List, following ``continue`` tokens page by page."""
        selectors = {"label_selector": label_selector, "field_selector": field_selector}
        first = await self.list(res, namespace, limit=page_size, **selectors)
        token = (first.get("metadata") or {}).get("continue")
        while token:
            try:
                page = await self.list(res, namespace, limit=page_size, continue_=token, **selectors)
            except ApiError as exc:
                if exc.code != 410:
                    raise
                # The snapshot behind the token expired: start over in one request.
                return await self.list(res, namespace, **selectors)
            first["items"] = [*(first.get("items") or []), *(page.get("items") or [])]
            token = (page.get("metadata") or {}).get("continue")
        first.setdefault("metadata", {}).pop("continue", None)
        first.setdefault("items", [])
        return first

    async def get_table(self, res: Resource, namespace: str | None = None, *, name: str | None = None,
                        label_selector: str | None = None, field_selector: str | None = None,
                        limit: int | None = None, continue_: str | None = None) -> ApiObject:
        """The server-side rendering of one object or a collection, as a meta.k8s.io/v1 Table."""
        ns = self._ns(res, namespace) if name else namespace
        params = {"labelSelector": label_selector, "fieldSelector": field_selector,
                  "limit": limit, "continue": continue_}
        return await self._json("GET", resource_path(res, ns, name), params=params,
                                headers={"Accept": TABLE_ACCEPT})

    async def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: int | None = None, allow_bookmarks: bool = True,
                    as_table: bool = False) -> AsyncIterator[tuple[str, ApiObject]]:
        """Yield ``(type, object)`` per event as lines arrive, until the server ends the stream.

        To stop early, close the iterator (``contextlib.aclosing``) so the
        connection is released at once.
        """
        params = {"watch": True, "resourceVersion": resource_version, "labelSelector": label_selector,
                  "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": allow_bookmarks or None}
        # A silent stream past the server's own timeout is a dead connection.
        read_timeout = None if timeout_seconds is None else timeout_seconds + 30.0
        if allow_bookmarks and len(self._servers) > 1:
            # Bookmarks keep a healthy stream talking; a silent one is better resumed on another master.
            read_timeout = min(read_timeout or WATCH_SILENCE, WATCH_SILENCE)
        headers = {"Accept": TABLE_ACCEPT} if as_table else None
        async with self.stream("GET", resource_path(res, namespace), params=params, headers=headers,
                               read_timeout=read_timeout) as response:
            lines = response.aiter_lines()
            try:
                async for line in lines:
                    if line.strip():
                        yield _event(line)
            finally:
                await _abandon(response, lines)


def _unavailable(host: str, exc: httpx.TransportError) -> ApiUnavailable:
    refused = isinstance(exc, httpx.ConnectError) and _refused(exc)
    # No connection, so no request: connecting failed, or no pooled connection came free in time.
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    detail = str(exc) or str(exc.__cause__ or "") or type(exc).__name__
    return ApiUnavailable(host, f"{host}: {detail}", refused=refused, unsent=unsent)


async def _abandon(response: httpx.Response, lines: AsyncIterator[str]) -> None:
    """Close a stream left early, then step its line iterator to the end.

    httpx's stream iterators are async generators; one abandoned while
    suspended makes trio warn when it is garbage collected (encode/httpx#3686).
    Once the response is closed, a last step lets the whole chain finish.
    """
    with trio.CancelScope(deadline=trio.current_time() + 1.0, shield=True):
        await response.aclose()
        with suppress(Exception):
            async for _ in lines:
                pass


def _event(line: str) -> tuple[str, ApiObject]:
    try:
        event = json.loads(line)
        kind, obj = str(event["type"]), event["object"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(500, "InternalError", f"invalid watch event: {line[:200]!r}") from exc
    if kind == "ERROR":
        raise status_error(obj if isinstance(obj, dict) else {})
    return kind, obj
