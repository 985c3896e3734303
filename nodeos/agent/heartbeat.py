"""The node's heartbeat: its Lease in ``kube-node-lease``, renewed every few seconds.

As in Kubernetes since 1.17, the cheap Lease write is the frequent signal
("this node is alive") and the Node's conditions are written only when they
change or once a minute: renewing a small Lease every 10 s for thousands of
nodes costs far less than rewriting their Node objects.

The Lease is updated with compare-and-swap on its resourceVersion; a
conflict (someone else wrote it) or a vanished Lease is repaired by reading
or creating it again on the next beat.
"""

from __future__ import annotations

import logging
from typing import Any

from nodeos.agent.node_status import LEASE_NAMESPACE, lease_object, micro_time
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.errors import ApiError

__all__ = ["LEASES", "NodeLease"]

log = logging.getLogger(__name__)
LEASES = by_plural("coordination.k8s.io", "v1", "leases")
LEASE_DURATION = 40  # seconds, as the kubelet's nodeLeaseDurationSeconds


class NodeLease:
    """Keeps ``kube-node-lease/<node>`` renewed, one ``renew()`` per beat."""

    def __init__(self, api: ApiClient, node_name: str, *, duration: int = LEASE_DURATION) -> None:
        self.api = api
        self.node_name = node_name
        self.duration = duration
        self._lease: dict[str, Any] | None = None  # the last one read or written

    async def renew(self, node: dict[str, Any] | None = None) -> dict[str, Any]:
        """Set renewTime to now, creating the Lease if needed (owned by ``node`` when given)."""
        for _ in range(2):
            try:
                return await self._renew_once(node)
            except ApiError as exc:
                self._lease = None  # read (or create) it afresh
                if exc.code not in (404, 409):
                    raise
        return await self._renew_once(node)

    async def _renew_once(self, node: dict[str, Any] | None) -> dict[str, Any]:
        if self._lease is None:
            self._lease = await self._read()
        if self._lease is None:
            body = lease_object(self.node_name, duration=self.duration, renew_time=micro_time(), owner=node)
            self._lease = await self.api.create(LEASES, body, LEASE_NAMESPACE)
            return self._lease
        spec = {**self._lease.get("spec", {}), "holderIdentity": self.node_name,
                "leaseDurationSeconds": self.duration, "renewTime": micro_time()}
        self._lease = await self.api.update(LEASES, {**self._lease, "spec": spec})
        return self._lease

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self.api.get(LEASES, self.node_name, LEASE_NAMESPACE)
        except ApiError as exc:
            if exc.code != 404:
                raise
            return None
