"""Handlers for resource URLs: CRUD, list, watch, deletecollection, subresources."""

from __future__ import annotations

import json
from typing import Any

from nodeos.api import subresources
from nodeos.api.http.request import PATCH_TYPES, Request, Send, send_bytes, send_json
from nodeos.api.http.routes import ResourcePath
from nodeos.api.http.watch import WatchStream
from nodeos.api.kinds import Resource
from nodeos.api.registry import PODS, Registry
from nodeos.api.selectors import parse_field_selector, parse_label_selector
from nodeos.api.tables import table_for
from nodeos.api.watchcache import Cached
from nodeos.errors import ApiError

TABLE_MEDIA = "as=table"


class ResourceHandlers:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def handle(self, req: Request, route: ResourcePath, send: Send) -> None:
        method = req.method
        if route.subresource:
            return await self._subresource(req, route, send)
        if route.name is None:
            if method == "GET":
                if req.flag("watch"):
                    return await self._watch(req, route, send)
                return await self._list(req, route, send)
            if method == "POST":
                return await self._create(req, route, send)
            if method == "DELETE":
                return await self._delete_collection(req, route, send)
        else:
            if route.resource.namespaced and route.namespace is None:
                raise ApiError.method_not_allowed()
            if method == "GET":
                await self._read_point(req)
                return await self._reply(req, send, 200, route.resource,
                                         self.registry.get(route.resource, route.namespace, route.name))
            if method == "PUT":
                return await self._update(req, route, send)
            if method == "PATCH":
                return await self._patch(req, route, send)
            if method == "DELETE":
                return await self._delete(req, route, send)
        raise ApiError.method_not_allowed()

    # -- reads -----------------------------------------------------------------------

    async def _list(self, req: Request, route: ResourcePath, send: Send) -> None:
        res = route.resource
        if "list" not in res.verbs:
            raise ApiError.method_not_allowed()
        match = _matcher(req, res)
        await self._read_point(req)
        result = self.registry.list(res, route.namespace, match, req.int_param("limit"), req.query.get("continue"))
        list_meta: dict[str, Any] = {"resourceVersion": str(result.revision)}
        if result.continue_token:
            list_meta["continue"] = result.continue_token
            list_meta["remainingItemCount"] = result.remaining
        table = _table_mode(req)
        if table is not None:
            objs = [c.obj for c in result.items]
            return await send_json(send, 200, table_for(res, objs, include_object=table, list_meta=list_meta))
        head = json.dumps({"kind": res.list_kind_name, "apiVersion": res.api_version, "metadata": list_meta},
                          separators=(",", ":")).encode()
        body = head[:-1] + b',"items":[' + b",".join(c.raw for c in result.items) + b"]}"
        await send_bytes(send, 200, body)

    async def _watch(self, req: Request, route: ResourcePath, send: Send) -> None:
        res = route.resource
        if "watch" not in res.verbs:
            raise ApiError.method_not_allowed()
        match = _matcher(req, res)
        revision = await self._read_point(req)
        from_revision = revision or None
        timeout = req.int_param("timeoutSeconds")
        watcher, backlog = self.registry.cache.watch(res.store_prefix(route.namespace), from_revision, match)
        stream = WatchStream(self.registry.cache, res, watcher, backlog, table=_table_mode(req),
                             bookmarks=req.flag("allowWatchBookmarks"),
                             timeout=float(timeout) if timeout is not None else None)
        await stream.serve(send, req.receive)

    async def _read_point(self, req: Request) -> int:
        """Make the cache as fresh as the request's resourceVersion asks, as
        Kubernetes reads it: unset means the latest (a consistent read across
        masters), "0" whatever this cache has, N at least N (else 410).
        Returns N, or 0 when none was given."""
        rv = req.query.get("resourceVersion", "")
        if rv == "":
            await self.registry.sync()
            return 0
        if not rv.isdigit():
            raise ApiError.bad_request(f'invalid resourceVersion "{rv}": must be a non-negative integer')
        if int(rv):
            await self.registry.wait_for_version(int(rv))
        return int(rv)

    # -- writes ------------------------------------------------------------------------

    async def _create(self, req: Request, route: ResourcePath, send: Send) -> None:
        res = route.resource
        body = await req.document()
        if res.kind == "Binding":
            name = body.get("metadata", {}).get("name") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name:
                raise ApiError.bad_request("a Binding needs metadata.name: the pod to bind")
            return await send_json(send, 201, await subresources.bind(self.registry, route.namespace or "", name,
                                                                      body))
        if "create" not in res.verbs or (res.namespaced and route.namespace is None):
            raise ApiError.method_not_allowed()
        created = await self.registry.create(res, route.namespace, body, dry_run=_dry_run(req))
        await self._reply(req, send, 201, res, created)

    async def _update(self, req: Request, route: ResourcePath, send: Send) -> None:
        body = await req.document()
        updated = await self.registry.update(route.resource, route.namespace, route.name or "", body,
                                             dry_run=_dry_run(req))
        await self._reply(req, send, 200, route.resource, updated)

    async def _patch(self, req: Request, route: ResourcePath, send: Send) -> None:
        patch_type = _patch_type(req)
        patch = await req.document()
        updated = await self.registry.patch(route.resource, route.namespace, route.name or "", patch_type, patch,
                                            dry_run=_dry_run(req))
        await self._reply(req, send, 200, route.resource, updated)

    async def _delete(self, req: Request, route: ResourcePath, send: Send) -> None:
        options = await _delete_options(req)
        deleted = await self.registry.delete(route.resource, route.namespace, route.name or "", options,
                                             dry_run=_dry_run(req))
        still_there = bool(deleted.obj["metadata"].get("deletionTimestamp"))
        await self._reply(req, send, 202 if still_there and route.resource is not PODS else 200,
                          route.resource, deleted)

    async def _delete_collection(self, req: Request, route: ResourcePath, send: Send) -> None:
        res = route.resource
        if "deletecollection" not in res.verbs:
            raise ApiError.method_not_allowed()
        options = await _delete_options(req)
        match = _matcher(req, res)
        await self.registry.sync()
        result = self.registry.list(res, route.namespace, match)
        deleted: list[Cached] = []
        for cached in result.items:
            metadata = cached.obj["metadata"]
            try:
                deleted.append(await self.registry.delete(res, metadata.get("namespace"), metadata["name"],
                                                          options, dry_run=_dry_run(req)))
            except ApiError as exc:
                if exc.code != 404:
                    raise
        body = {"kind": res.list_kind_name, "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.registry.cache.revision)},
                "items": [c.obj for c in deleted]}
        await send_json(send, 200, body)

    # -- subresources -----------------------------------------------------------------------

    async def _subresource(self, req: Request, route: ResourcePath, send: Send) -> None:
        res, ns, name, sub = route.resource, route.namespace, route.name or "", route.subresource
        method = req.method
        if method == "GET":
            await self._read_point(req)
        if sub == "status":
            if method == "GET":
                return await self._reply(req, send, 200, res, self.registry.get(res, ns, name))
            if method == "PUT":
                updated = await self.registry.update(res, ns, name, await req.document(), subresource="status",
                                                     dry_run=_dry_run(req))
                return await self._reply(req, send, 200, res, updated)
            if method == "PATCH":
                updated = await self.registry.patch(res, ns, name, _patch_type(req), await req.document(),
                                                    subresource="status", dry_run=_dry_run(req))
                return await self._reply(req, send, 200, res, updated)
        elif sub == "scale":
            if method == "GET":
                return await send_json(send, 200, subresources.scale_of(res, self.registry.get(res, ns, name)))
            if method == "PUT":
                scale = await subresources.update_scale(self.registry, res, ns or "", name, await req.document())
                return await send_json(send, 200, scale)
            if method == "PATCH":
                scale = await subresources.patch_scale(self.registry, res, ns or "", name, _patch_type(req),
                                                       await req.document())
                return await send_json(send, 200, scale)
        elif sub == "binding" and method == "POST":
            return await send_json(send, 201, await subresources.bind(self.registry, ns or "", name,
                                                                      await req.document()))
        elif sub == "eviction" and method == "POST":
            options = subresources.eviction_options(await req.document(), ns or "", name)
            return await send_json(send, 201, await subresources.evict(
                self.registry, ns or "", name, _checked_options(options), dry_run=_dry_run(req)))
        raise ApiError.method_not_allowed()

    async def _reply(self, req: Request, send: Send, status: int, res: Resource, cached: Cached) -> None:
        table = _table_mode(req)
        if table is not None:
            return await send_json(send, status, table_for(res, [cached.obj], include_object=table))
        await send_bytes(send, status, cached.raw)


def _matcher(req: Request, res: Resource) -> Any:
    labels = req.query.get("labelSelector")
    fields = req.query.get("fieldSelector")
    label_selector = parse_label_selector(labels) if labels else None
    field_selector = parse_field_selector(fields, res) if fields else None
    if label_selector is None and field_selector is None:
        return _everything

    def match(obj: dict[str, Any]) -> bool:
        if label_selector is not None and not label_selector.matches(obj["metadata"].get("labels")):
            return False
        return field_selector is None or field_selector.matches(obj)

    return match


def _everything(obj: dict[str, Any]) -> bool:
    return True


def _table_mode(req: Request) -> str | None:
    """The includeObject mode if the client asked for a meta.k8s.io/v1 Table."""
    accept = req.headers.get("accept", "").replace(" ", "").lower()
    for option in accept.split(","):
        params = set(option.split(";")[1:])
        if "as=table" in params and "g=meta.k8s.io" in params and "v=v1" in params:
            mode = req.query.get("includeObject", "Metadata")
            if mode not in ("None", "Metadata", "Object"):
                raise ApiError.bad_request(f'includeObject: unsupported value "{mode}"')
            return mode
    return None


def _patch_type(req: Request) -> str:
    patch_type = PATCH_TYPES.get(req.content_type)
    if patch_type is None:
        if req.content_type == "application/apply-patch+yaml":
            raise ApiError.unsupported_media_type(
                f"{req.content_type} (server-side apply is not supported; use client-side kubectl apply)")
        raise ApiError.unsupported_media_type(req.content_type)
    return patch_type


def _dry_run(req: Request) -> bool:
    value = req.query.get("dryRun")
    if value is None:
        return False
    if value != "All":
        raise ApiError.bad_request(f'dryRun: unsupported value "{value}": only "All" is supported')
    return True


async def _delete_options(req: Request) -> dict[str, Any]:
    raw = await req.body()
    options: dict[str, Any] = {}
    if raw.strip():
        options = await req.document()
        if not isinstance(options, dict):
            raise ApiError.bad_request("the body of a delete must be DeleteOptions")
    grace = req.int_param("gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    if "propagationPolicy" in req.query:
        options["propagationPolicy"] = req.query["propagationPolicy"]
    return _checked_options(options)


def _checked_options(options: dict[str, Any]) -> dict[str, Any]:
    """DeleteOptions whose policy and grace period the registry can rely on."""
    policy = options.get("propagationPolicy")
    if policy not in (None, "Foreground", "Background", "Orphan"):
        raise ApiError.bad_request(f'propagationPolicy: unsupported value "{policy}": '
                                   'supported values: "Foreground", "Background", "Orphan"')
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise ApiError.bad_request("gracePeriodSeconds must be an integer")
    return options
