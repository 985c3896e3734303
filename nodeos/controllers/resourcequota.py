"""ResourceQuota status: recount ``status.used`` when usage goes away.

Admission charges a quota as objects are created (nodeos.api.admission);
nothing charges it back. This controller does: when a pod is deleted or
reaches a terminal phase, a Service is deleted, or a quota's hard limits
change, it recounts the namespace's usage and writes ``status.hard`` and
``status.used``. Every quota is also recounted at start (deletions while
no controller ran) and each recount period, which repairs a charge for a
create that was then not stored.

The count reads the API (a consistent list), not this controller's caches,
and the write is compare-and-swap on the quota's resourceVersion, so a
charge admitted meanwhile makes the write fail and the recount run again.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import trio

from nodeos.api.admission.usage import TERMINAL_PHASES, Usage, format_usage, parse_usage, total, usage_of
from nodeos.api.kinds import RESOURCES, Resource, by_plural
from nodeos.client import ApiClient, split_key
from nodeos.config import Config
from nodeos.controllers.base import Controller
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
QUOTAS = by_plural("", "v1", "resourcequotas")
PODS = by_plural("", "v1", "pods")
SERVICES = by_plural("", "v1", "services")


class ResourceQuotaController(Controller):
    name = "resourcequota"
    recount_period = 60.0

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        super().__init__(api, recorder)
        assert QUOTAS is not None and PODS is not None and SERVICES is not None
        self.quotas = self.informer(QUOTAS, on_change=self._quota_changed)
        self.pods = self.informer(PODS, on_change=lambda _pod: None)
        self.pods.add_handlers(on_update=self._pod_updated, on_delete=self._released)
        self.services = self.informer(SERVICES, on_change=lambda _svc: None)
        self.services.add_handlers(on_delete=self._released)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(super().run)
            nursery.start_soon(self._recount_periodically)
            task_status.started()

    async def _recount_periodically(self) -> None:
        """Recount every quota now (usage may have gone while no controller ran) and every period."""
        while True:
            for quota in self.quotas.list():
                self.enqueue(quota)
            await trio.sleep(self.recount_period)

    def _quota_changed(self, quota: dict[str, Any]) -> None:
        """New quotas and changed hard limits; not the status writes of every charge,
        which recounting would only race with (a charged pod may not be stored yet)."""
        status_hard = (quota.get("status") or {}).get("hard")
        if status_hard != format_usage(parse_usage((quota.get("spec") or {}).get("hard"))):
            self.enqueue(quota)

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if _terminal(new) and not _terminal(old):
            self._released(new)

    def _released(self, obj: dict[str, Any]) -> None:
        namespace = obj["metadata"].get("namespace")
        quotas = [q for q in self.quotas.list() if q["metadata"].get("namespace") == namespace]
        log.debug("resourcequota: %s/%s released; recounting %d quotas", namespace, obj["metadata"].get("name"),
                  len(quotas))
        for quota in quotas:
            self.enqueue(quota)

    async def reconcile(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            return
        namespace, _ = split_key(key)
        hard = parse_usage((quota.get("spec") or {}).get("hard"))
        used = await self.count(namespace or "", set(hard))
        status = {"hard": format_usage(hard), "used": format_usage(used)}
        if status != quota.get("status"):
            try:
                await self.api.update_status(QUOTAS, {**quota, "status": status})
            except ApiError as exc:
                if exc.code == 404:
                    return
                raise  # a conflict: a charge landed meanwhile; the base class retries
            log.info("resourcequota: %s: used %s", key, status["used"])

    async def count(self, namespace: str, names: set[str]) -> Usage:
        """The namespace's usage of ``names``, listing only the kinds they need."""
        used: Usage = {name: Decimal(0) for name in names}
        for res in _kinds_for(names):
            listed = await self.api.list_all(res, namespace)
            for name, value in total(usage_of(res, obj) for obj in listed.get("items") or []).items():
                if name in used:
                    used[name] += value
        return used


def _kinds_for(names: set[str]) -> list[Resource]:
    """Which kinds a set of quota names counts: pods for compute, Services for services.*."""
    kinds = []
    for res in RESOURCES:
        if not res.namespaced or res.kind == "Binding":
            continue
        counts = f"count/{res.qualified}" in names
        if res.kind == "Pod":
            counts = counts or any(n == "pods" or n.split(".")[0] in ("requests", "limits", "cpu", "memory")
                                   for n in names)
        elif res.kind == "Service":
            counts = counts or any(n.split(".")[0] == "services" for n in names)
        if counts:
            kinds.append(res)
    return kinds


def _terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def build(api: ApiClient, recorder: EventRecorder, config: Config) -> ResourceQuotaController:
    return ResourceQuotaController(api, recorder)

