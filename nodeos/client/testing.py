"""An in-memory, Kubernetes-shaped API server for tests, as an httpx transport.

``FakeApi`` answers the wire protocol the client uses — get, list (selectors,
paging, Tables), create, update, merge patch, delete, binding, and streaming
watch with 410 on compacted history — so code built on ``ApiClient`` can be
tested without a server. It is deliberately simple: no validation, no
defaulting, no admission. ``hook`` lets a test answer any request itself (to
inject failures), ``requests`` records what was sent.

    fake = FakeApi()
    async with fake.client() as api: ...
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from nodeos.api.kinds import Resource, by_plural
from nodeos.client.api import ApiClient, ApiObject
from nodeos.client.kubeconfig import Connection
from nodeos.errors import ApiError

Hook = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class _Target:
    res: Resource
    namespace: str | None
    name: str | None
    sub: str | None


@dataclass
class _Watcher:
    target: _Target
    params: httpx.QueryParams
    send: trio.MemorySendChannel[bytes | Exception | None]


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], ApiObject] = {}  # (store prefix, ns, name)
        self.history: list[tuple[int, str, Resource, ApiObject]] = []
        self.revision = 1
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.requests: list[httpx.Request] = []
        self.hook: Hook | None = None
        self._watchers: list[_Watcher] = []
        self._uids = itertools.count(1)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, namespace: str = "default") -> ApiClient:
        return ApiClient(Connection("http://fake.test", namespace=namespace), transport=self.transport)

    # -- direct access for tests ----------------------------------------------------

    def put(self, res: Resource, obj: ApiObject) -> ApiObject:
        """Store an object (create or replace) and notify watchers."""
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        key = (res.store_prefix(), meta.get("namespace"), meta["name"])
        kind = "MODIFIED" if key in self.objects else "ADDED"
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        obj.setdefault("kind", res.kind)
        obj.setdefault("apiVersion", res.api_version)
        self.objects[key] = obj
        self._emit(kind, res, obj)
        return obj

    def remove(self, res: Resource, namespace: str | None, name: str) -> ApiObject:
        obj = self.objects.pop((res.store_prefix(), namespace if res.namespaced else None, name))
        self._emit("DELETED", res, obj)
        return obj

    def compact(self) -> None:
        """Forget history: watches from any older resourceVersion now get 410."""
        self.compacted = self.revision
        self.history.clear()

    def end_watches(self, error: Exception | None = None) -> None:
        """End every open watch stream, cleanly or by raising ``error`` (a lost connection)."""
        self._notify(lambda w: True, error)
        self._watchers.clear()

    def bookmark(self, res: Resource) -> None:
        self.revision += 1
        obj = {"kind": res.kind, "apiVersion": res.api_version,
               "metadata": {"resourceVersion": str(self.revision)}}
        self._notify(lambda w: w.target.res == res, _line("BOOKMARK", obj))

    def _emit(self, kind: str, res: Resource, obj: ApiObject) -> None:
        self.revision += 1
        if kind != "DELETED":
            obj["metadata"]["resourceVersion"] = str(self.revision)
        snapshot = copy.deepcopy(obj)
        if kind == "DELETED":
            snapshot["metadata"]["resourceVersion"] = str(self.revision)
        self.history.append((self.revision, kind, res, snapshot))
        self._notify(lambda w: _matches(w.target, w.params, res, snapshot), _line(kind, snapshot))

    def _notify(self, wants: Callable[[_Watcher], bool], line: bytes | Exception | None) -> None:
        for w in [*self._watchers]:
            try:
                if wants(w):
                    w.send.send_nowait(line)
            except trio.BrokenResourceError:  # the client closed this watch
                self._watchers.remove(w)

    # -- the transport ------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.hook and (answer := self.hook(request)) is not None:
            return answer
        try:
            return self._route(request)
        except ApiError as exc:
            return httpx.Response(exc.code, json=exc.status())

    def _route(self, request: httpx.Request) -> httpx.Response:
        target = _parse(request.url.path)
        method, params = request.method, request.url.params
        if method == "GET" and params.get("watch") in ("true", "1"):
            return self._watch(target, params)
        if method == "GET":
            body = self._read(target, params)
            if "as=Table" in request.headers.get("accept", ""):
                body = _table(target.res, body)
            return httpx.Response(200, json=body)
        payload = json.loads(request.content) if request.content else {}
        if method == "POST":
            return httpx.Response(201, json=self._create(target, payload))
        if method == "PUT":
            return httpx.Response(200, json=self._update(target, payload))
        if method == "PATCH":
            obj = copy.deepcopy(self._get(target))
            if "json-patch" in request.headers.get("content-type", ""):
                raise ApiError.unsupported_media_type("application/json-patch+json")
            return httpx.Response(200, json=self.put(target.res, merge_patch(obj, payload)))
        if method == "DELETE":
            self._get(target)
            return httpx.Response(200, json=self.remove(target.res, target.namespace, target.name or ""))
        raise ApiError.method_not_allowed()

    def _get(self, t: _Target) -> ApiObject:
        obj = self.objects.get((t.res.store_prefix(), t.namespace, t.name or ""))
        if obj is None:
            raise ApiError.not_found(t.res.plural, t.name or "", t.res.group)
        return obj

    def _read(self, t: _Target, params: httpx.QueryParams) -> ApiObject:
        if t.name:
            return self._get(t)
        items = [o for (prefix, _, _), o in sorted(self.objects.items())
                 if prefix == t.res.store_prefix() and _matches(t, params, t.res, o)]
        start = int(params.get("continue") or 0)
        limit = int(params.get("limit") or 0) or len(items)
        meta: ApiObject = {"resourceVersion": str(self.revision)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        page = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                for o in items[start:start + limit]]
        return {"kind": t.res.list_kind_name, "apiVersion": t.res.api_version,
                "metadata": meta, "items": copy.deepcopy(page)}

    def _create(self, t: _Target, obj: ApiObject) -> ApiObject:
        if t.sub == "binding":
            pod = copy.deepcopy(self._get(t))
            pod.setdefault("spec", {})["nodeName"] = obj["target"]["name"]
            self.put(t.res, pod)
            return {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}
        meta = obj.setdefault("metadata", {})
        if t.res.namespaced:
            meta["namespace"] = t.namespace
        name = meta.get("name", "")
        if (t.res.store_prefix(), t.namespace, name) in self.objects:
            raise ApiError.already_exists(t.res.plural, name, t.res.group)
        return self.put(t.res, obj)

    def _update(self, t: _Target, obj: ApiObject) -> ApiObject:
        current = self._get(t)
        sent = obj.get("metadata", {}).get("resourceVersion")
        if sent and sent != current["metadata"]["resourceVersion"]:
            raise ApiError.conflict(t.res.plural, t.name or "", "the object has been modified",
                                    t.res.group)
        if t.sub == "status":
            obj = {**copy.deepcopy(current), "status": obj.get("status")}
        return self.put(t.res, obj)

    def _watch(self, t: _Target, params: httpx.QueryParams) -> httpx.Response:
        send, receive = trio.open_memory_channel[bytes | Exception | None](float("inf"))
        since = int(params.get("resourceVersion") or 0)
        if since and since < self.compacted:
            gone = ApiError.gone(f"too old resource version: {since} ({self.compacted})")
            send.send_nowait(_line("ERROR", gone.status()))
            send.send_nowait(None)
        elif since:
            for rev, kind, res, obj in self.history:
                if rev > since and _matches(t, params, res, obj):
                    send.send_nowait(_line(kind, obj))
        else:
            for obj in self._read(_Target(t.res, t.namespace, None, None), params)["items"]:
                send.send_nowait(_line("ADDED", {"kind": t.res.kind, "apiVersion": t.res.api_version, **obj}))
        self._watchers.append(_Watcher(t, params, send))
        timeout = float(params.get("timeoutSeconds") or "inf")
        return httpx.Response(200, stream=_WatchStream(receive, timeout))


class _WatchStream(httpx.AsyncByteStream):
    def __init__(self, receive: trio.MemoryReceiveChannel[bytes | Exception | None], timeout: float) -> None:
        self._receive, self._timeout = receive, timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        deadline = trio.current_time() + self._timeout
        while True:
            # The timeout covers only the wait: a cancel scope must not span a yield.
            with trio.move_on_at(deadline) as scope:
                item = await self._receive.receive()
            if scope.cancelled_caught or item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    async def aclose(self) -> None:
        await self._receive.aclose()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _parse(path: str) -> _Target:
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        group, version, rest = parts[1], parts[2], parts[3:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    res = by_plural(group, version, rest[0])
    if res is None:
        raise ApiError.not_found(rest[0], "", group)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return _Target(res, namespace, name, sub)


def _matches(t: _Target, params: httpx.QueryParams, res: Resource, obj: ApiObject) -> bool:
    meta = obj.get("metadata") or {}
    if res != t.res or (t.namespace and meta.get("namespace") != t.namespace):
        return False
    labels = meta.get("labels") or {}
    for term in filter(None, (params.get("labelSelector") or "").split(",")):
        key, op, value = _term(term)
        if (op == "=" and labels.get(key) != value) or (op == "!=" and labels.get(key) == value):
            return False
        if op == "" and key not in labels:
            return False
    for term in filter(None, (params.get("fieldSelector") or "").split(",")):
        key, op, value = _term(term)
        actual = _field(obj, key)
        if (op == "=") != (actual == value):
            return False
    return True


def _term(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        if op in term:
            key, value = term.split(op, 1)
            return key.strip(), "=" if op == "==" else op, value.strip()
    return term.strip(), "", ""


def _field(obj: ApiObject, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def _table(res: Resource, body: ApiObject) -> ApiObject:
    items = body.get("items") if "items" in body else [body]
    rows = [{"cells": [o["metadata"]["name"], o["metadata"].get("resourceVersion", "")],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"]}} for o in items or []]
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {k: v for k, v in (body.get("metadata") or {}).items()
                     if k in ("resourceVersion", "continue")} if "items" in body else {},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Resource Version", "type": "string", "format": "", "priority": 1},
        ],
        "rows": rows,
    }


def _line(kind: str, obj: ApiObject) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"
