"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go does it.

Several masters may run the scheduler and the controller manager; only the
holder of the component's Lease may act. ``lead(api, name, identity, fn)``
runs ``fn`` only while this process holds the Lease:

- **acquire**: every ``retry_period`` seconds, read the Lease; create it if
  missing; take it when it is free (no holder) or expired (its
  ``renewTime + leaseDurationSeconds`` has passed). Every write is a
  compare-and-swap on the resourceVersion read, so of two candidates racing
  for the same Lease exactly one wins. Each takeover of an existing Lease
  bumps ``leaseTransitions``.
- **lead**: run ``fn`` in a nursery and renew every ``retry_period``. When no
  renewal has succeeded for ``renew_deadline`` seconds, or another holder
  shows up, cancel ``fn`` and go back to acquiring. ``renew_deadline`` is
  shorter than the lease duration, so ``fn`` stops before anyone else can
  take over.
- **release**: when ``lead`` is cancelled (or ``fn`` fails or returns), clear
  ``holderIdentity`` so a successor need not wait for the lease to expire.

Expiry compares the Lease's ``renewTime`` with this host's clock: like
Kubernetes, it assumes the masters' clocks agree to well within a lease
duration (they run NTP).

Error handling: API errors while acquiring or renewing count as a failed
attempt and are retried; an exception from ``fn`` releases the Lease and
propagates to the caller.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client.api import ApiClient, ApiUnavailable
from nodeos.errors import ApiError

__all__ = ["LEASES", "lead"]

log = logging.getLogger(__name__)
LEASES = by_plural("coordination.k8s.io", "v1", "leases")
RELEASE_TIMEOUT = 5.0
RELEASE_ATTEMPTS = 5
EXPIRY_MARGIN = 0.01  # seconds after a Lease's expiry before trying to take it: clocks read in whole microseconds


async def lead(api: ApiClient, lease_name: str, identity: str, fn: Callable[[], Awaitable[Any]], *,
               namespace: str = "kube-system", lease_duration: int = 15, renew_deadline: float = 10,
               retry_period: float = 2) -> None:
    """Run ``fn()`` whenever, and only while, ``identity`` holds the Lease; until cancelled.

    Returns once ``fn`` returns (releasing the Lease); raises what ``fn`` raises.
    """
    if not retry_period < renew_deadline < lease_duration:
        raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")
    lease = _Lease(api, namespace, lease_name, identity, lease_duration)
    try:
        while True:
            await _acquire(lease, retry_period)
            log.info("%s: %s became the leader", lease_name, identity)
            if await _lead_until_lost(lease, fn, renew_deadline, retry_period):
                return
            log.warning("%s: %s lost the lease; standing by", lease_name, identity)
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(RELEASE_TIMEOUT):
                await lease.release()


async def _acquire(lease: _Lease, retry_period: float) -> None:
    """Try every ``retry_period``, and also the moment the holder's Lease runs out.

    Waking at the expiry rather than at the next retry makes a killed leader's
    successor take over within the lease duration of its last renewal (plus a
    round trip), not up to a retry period later.
    """
    while not await lease.try_acquire_or_renew():
        expires_in = lease.seconds_until_expiry()
        wait = retry_period if expires_in is None else min(retry_period, expires_in + EXPIRY_MARGIN)
        await trio.sleep(max(wait, EXPIRY_MARGIN))


async def _lead_until_lost(lease: _Lease, fn: Callable[[], Awaitable[Any]], renew_deadline: float,
                           retry_period: float) -> bool:
    """Run ``fn`` while renewing. True if ``fn`` returned, False if the lease was lost."""
    finished = False

    async def run_fn() -> None:
        nonlocal finished
        await fn()
        finished = True
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_fn)
        await _renew_until_lost(lease, renew_deadline, retry_period)
        nursery.cancel_scope.cancel()
    return finished


async def _renew_until_lost(lease: _Lease, renew_deadline: float, retry_period: float) -> None:
    last_renewal = trio.current_time()
    while True:
        await trio.sleep(retry_period)
        renewed = False
        with trio.move_on_at(last_renewal + renew_deadline):
            renewed = await lease.try_acquire_or_renew()
        if renewed:
            last_renewal = trio.current_time()
        elif lease.held_by_another() or trio.current_time() - last_renewal >= renew_deadline:
            return


class _Lease:
    """One candidate's view of the Lease, and the compare-and-swap writes it makes."""

    def __init__(self, api: ApiClient, namespace: str, name: str, identity: str, duration: int) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.identity, self.duration = identity, duration
        self.observed: dict[str, Any] | None = None  # the Lease as last read or written

    def held_by_another(self) -> bool:
        spec = (self.observed or {}).get("spec") or {}
        holder = spec.get("holderIdentity")
        return bool(holder) and holder != self.identity and not _expired(spec)

    def seconds_until_expiry(self) -> float | None:
        """How long until the Lease as last read expires; None when it has no renewTime."""
        spec = (self.observed or {}).get("spec") or {}
        renewed = _parse_time(spec.get("renewTime"))
        if renewed is None:
            return None
        expiry = renewed + dt.timedelta(seconds=spec.get("leaseDurationSeconds") or 0)
        return (expiry - dt.datetime.now(dt.UTC)).total_seconds()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True if we hold the Lease afterwards."""
        try:
            return await self._try()
        except (ApiError, ApiUnavailable) as exc:
            if not (isinstance(exc, ApiError) and exc.code == 409):  # a conflict is a lost race, not news
                log.info("%s: lease attempt failed: %s", self.name, exc)
            return False

    async def _try(self) -> bool:
        now = _micro_time()
        try:
            current = await self.api.get(LEASES, self.name, self.namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise
            self.observed = await self.api.create(LEASES, self._new_lease(now), self.namespace)
            return True
        self.observed = current
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not _expired(spec):
            return False
        renewed = {**spec, "holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                   "renewTime": now}
        if holder != self.identity:
            renewed["acquireTime"] = now
            renewed["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        self.observed = await self.api.update(LEASES, {**current, "spec": renewed})  # CAS on resourceVersion
        return True

    def _new_lease(self, now: str) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                     "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
        }

    async def release(self) -> None:
        """Clear holderIdentity if we still hold the Lease, so a successor takes it at once.

        A renewal cancelled mid-flight may still land after our read; its write then makes
        ours conflict, so a conflict re-reads and tries again.
        """
        for _ in range(RELEASE_ATTEMPTS):
            try:
                current = await self.api.get(LEASES, self.name, self.namespace)
                spec = current.get("spec") or {}
                if spec.get("holderIdentity") != self.identity:
                    return
                released = {**spec, "holderIdentity": "", "renewTime": _micro_time()}
                await self.api.update(LEASES, {**current, "spec": released})
                log.info("%s: %s released the lease", self.name, self.identity)
                return
            except ApiError as exc:
                if exc.code != 409:
                    log.info("%s: could not release the lease: %s", self.name, exc)
                    return
            except ApiUnavailable as exc:
                log.info("%s: could not release the lease: %s", self.name, exc)
                return
            await trio.sleep(0.05)


def _expired(spec: dict[str, Any]) -> bool:
    renewed = _parse_time(spec.get("renewTime"))
    if renewed is None:
        return True
    duration = spec.get("leaseDurationSeconds") or 0
    return dt.datetime.now(dt.UTC) >= renewed + dt.timedelta(seconds=duration)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _micro_time() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
