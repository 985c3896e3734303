"""Admission: the namespace policies a create must pass before it is stored.

Two plugins, in Kubernetes' order: LimitRanger defaults container resources
(``mutate``, before validation) and then checks them against the
namespace's LimitRanges; ResourceQuota then charges the object to every
quota of its namespace (``admit``, after validation, last before the store).
Only creates are admitted: updates cannot change what nodeos charges for
(pod resources are immutable), so the charge taken at create stands.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.admission import limitranger
from nodeos.api.admission.resourcequota import QUOTAS, QuotaCharger, forbidden, new_quota_status
from nodeos.api.kinds import Resource
from nodeos.api.model import qos_class
from nodeos.api.store import Store
from nodeos.api.watchcache import WatchCache

__all__ = ["Admission"]


class Admission:
    def __init__(self, store: Store, cache: WatchCache) -> None:
        self.cache = cache
        self.quotas = QuotaCharger(store, cache)

    def mutate(self, res: Resource, namespace: str | None, obj: dict[str, Any]) -> None:
        """Defaults from policy: LimitRange resources on a pod, a new quota's status."""
        if not namespace:
            return
        if res.kind == "Pod" and limitranger.default_pod(self.cache, namespace, obj):
            spec, status = obj.get("spec"), obj.get("status")
            if isinstance(spec, dict) and isinstance(status, dict):
                status["qosClass"] = qos_class(spec)  # the defaults may change the class
        elif res is QUOTAS:
            obj["status"] = new_quota_status(self.cache, namespace, obj)

    async def admit(self, res: Resource, namespace: str | None, obj: dict[str, Any], *, dry_run: bool) -> None:
        """Refuse (403) a create that breaks a LimitRange or a quota; charge the quotas."""
        if not namespace or self.cache.get(res.store_key(namespace, obj["metadata"]["name"])) is not None:
            return  # the store refuses the name clash; do not charge for it
        if res.kind == "Pod":
            problems = limitranger.check_pod(self.cache, namespace, obj)
            if problems:
                reason = problems[0] if len(problems) == 1 else f"[{', '.join(problems)}]"
                raise forbidden(res, obj["metadata"]["name"], reason)
        await self.quotas.charge(res, namespace, obj, dry_run=dry_run)
