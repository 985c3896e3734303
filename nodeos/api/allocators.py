"""Service ClusterIPs and NodePorts: unique across every master, freed on delete.

Each address and port a Service holds has a *claim* key in the store,
``/nodeos/serviceips/<ip>`` and ``/nodeos/nodeports/<protocol>-<port>``,
made with the store's ``create``: of two masters taking the same address at
once, exactly one create succeeds and the other tries another address. The
claim is made before the Service is written, so a Service never holds an
address without its claim (except after a crash between the two, which the
repair pass mends).

Why claim keys rather than Kubernetes' RangeAllocation bitmap updated by
compare-and-swap: a bitmap is one hot key every Service create of the
cluster fights over (a lost CAS is a retry for the whole range), while claims
only collide when two creates pick the same address, which random picking
makes rare. The claims are also plain keys the watch cache already follows,
so "is this address free?" is a dictionary lookup before the store is asked.
The price is one write per address and port, and keys to clean up — hence:

- **release**: deleting a Service, or an update that drops an address or a
  port (type change), deletes the claims it no longer holds — only claims
  recorded for that Service's uid, compare-and-swap on their revision;
- **repair** (as Kubernetes' ipallocator/portallocator repair controllers):
  on start and every ``REPAIR_SECONDS``, claims that no Service holds for
  longer than ``ORPHAN_GRACE`` seconds (unchanged) are deleted — the grace
  covers creates in flight between claim and Service write on any master —
  and addresses a Service holds without a claim (a store from before claims,
  a crash) get one. Idempotent and compare-and-swap, so every master may run it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio

from nodeos.api.store import KeyValue, Store
from nodeos.api.watchcache import WatchCache
from nodeos.errors import ApiError, Cause, KeyExists, KeyNotFound, RevisionMismatch, StoreError

log = logging.getLogger(__name__)

NODE_PORT_RANGE = range(30000, 32768)
SERVICE_IPS = "/nodeos/serviceips/"
NODE_PORTS = "/nodeos/nodeports/"
REPAIR_SECONDS = 30.0
ORPHAN_GRACE = 60.0
SERVICES_PREFIX = "/core/services/"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim key this allocation created (and so may take back on failure)."""

    key: str
    revision: int


class ServiceAllocator:
    def __init__(self, store: Store, cache: WatchCache, service_cidr: ipaddress.IPv4Network) -> None:
        self.store = store
        self.cache = cache
        self.cidr = service_cidr
        self._orphans: dict[str, tuple[int, float]] = {}  # claim key -> (revision, first seen orphaned)

    @property
    def api_service_ip(self) -> str:
        """The first usable address: the ``kubernetes`` Service's own."""
        return str(self.cidr.network_address + 1)

    # -- assigning -------------------------------------------------------------------

    async def assign(self, svc: dict[str, Any], key: str, old: dict[str, Any] | None = None, *,
                     dry_run: bool = False) -> list[Claim]:
        """Fill in ``clusterIP(s)`` and ``nodePort``s the user left empty, claim them
        and the ones they asked for. Mutates ``svc``; raises Invalid on clashes.
        Returns the claims made, for ``undo`` if the Service write fails."""
        owner = _Owner(key, svc["metadata"].get("uid", ""))
        claims: list[Claim] = []
        try:
            await self._assign_ip(svc["spec"], (old or {}).get("spec") or {}, owner, claims, dry_run)
            await self._assign_node_ports(svc["spec"], (old or {}).get("spec") or {}, owner, claims, dry_run)
        except BaseException:
            await self.undo(claims, key)
            raise
        return claims

    async def _assign_ip(self, spec: dict[str, Any], old_spec: dict[str, Any], owner: _Owner,
                         claims: list[Claim], dry_run: bool) -> None:
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return
        if old_spec.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        elif not spec.get("clusterIP"):
            spec["clusterIP"] = await self._free_ip(owner, claims, dry_run)
        elif spec["clusterIP"] != "None" and spec["clusterIP"] != old_spec.get("clusterIP"):
            await self._claim_ip(spec["clusterIP"], owner, claims, dry_run)
        spec["clusterIPs"] = [spec["clusterIP"]]

    async def _assign_node_ports(self, spec: dict[str, Any], old_spec: dict[str, Any], owner: _Owner,
                                 claims: list[Claim], dry_run: bool) -> None:
        kind = spec.get("type", "ClusterIP")
        old_ports = {(p.get("protocol", "TCP"), p.get("port")): p.get("nodePort")
                     for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for i, port in enumerate(spec.get("ports") or []):
            if kind not in ("NodePort", "LoadBalancer"):
                port.pop("nodePort", None)
                continue
            protocol = port.get("protocol", "TCP")
            kept = old_ports.get((protocol, port.get("port")))
            if not port.get("nodePort"):
                port["nodePort"] = kept or await self._free_port(protocol, owner, claims, dry_run)
            elif port["nodePort"] != kept:
                await self._claim_port(protocol, port["nodePort"], i, owner, claims, dry_run)

    async def _free_ip(self, owner: _Owner, claims: list[Claim], dry_run: bool) -> str:
        reserved = {self.cidr.network_address, self.cidr.network_address + 1, self.cidr.broadcast_address}
        size = self.cidr.num_addresses
        start = random.randrange(size)
        for offset in range(size):
            addr = self.cidr.network_address + (start + offset) % size
            if addr not in reserved and await self._take(ip_key(addr), owner, claims, dry_run):
                return str(addr)
        raise ApiError(500, "InternalError", f"Internal error occurred: range {self.cidr} is full")

    async def _free_port(self, protocol: str, owner: _Owner, claims: list[Claim], dry_run: bool) -> int:
        start = random.randrange(len(NODE_PORT_RANGE))
        for offset in range(len(NODE_PORT_RANGE)):
            port = NODE_PORT_RANGE[(start + offset) % len(NODE_PORT_RANGE)]
            if await self._take(port_key(protocol, port), owner, claims, dry_run):
                return port
        raise ApiError(500, "InternalError", "Internal error occurred: the node port range is full")

    async def _claim_ip(self, text: str, owner: _Owner, claims: list[Claim], dry_run: bool) -> None:
        addr = _address(text)
        if addr is None:
            raise _invalid("spec.clusterIP", f'"{text}": must be a valid IP address')
        if addr not in self.cidr:
            raise _invalid("spec.clusterIP", f'"{text}": provided IP is not in the valid range. '
                           f"The range of valid IPs is {self.cidr}")
        if not await self._take(ip_key(addr), owner, claims, dry_run, adopt=True):
            raise _invalid("spec.clusterIP", f'"{text}": provided IP is already allocated')

    async def _claim_port(self, protocol: str, port: int, index: int, owner: _Owner, claims: list[Claim],
                          dry_run: bool) -> None:
        field = f"spec.ports[{index}].nodePort"
        if port not in NODE_PORT_RANGE:
            raise _invalid(field, f"{port}: provided port is not in the valid range. "
                           "The range of valid ports is 30000-32767")
        if not await self._take(port_key(protocol, port), owner, claims, dry_run, adopt=True):
            raise _invalid(field, f"{port}: provided port is already allocated")

    async def _take(self, key: str, owner: _Owner, claims: list[Claim], dry_run: bool, *,
                    adopt: bool = False) -> bool:
        """Create the claim ``key``; False if someone else holds it.

        With ``adopt``, a claim already recorded for the same Service key counts
        as this Service's: two masters ensuring the same built-in Service with
        the same address race on it, and the loser of the Service create must
        see AlreadyExists, not "address already allocated"."""
        held = self.cache.get(key)
        if held is not None and not (adopt and _owner_of(held.obj).key == owner.key):
            return False
        if dry_run:
            return True
        try:
            revision = await self.store.create(key, owner.encode())
        except KeyExists:
            if not adopt:
                return False
            kv = await self.store.get(key)
            return kv is not None and _owner_of(json.loads(kv.value)).key == owner.key
        claims.append(Claim(key, revision))
        return True

    # -- giving back ---------------------------------------------------------------------

    async def undo(self, claims: list[Claim], service_key: str) -> None:
        """Take back the claims of a Service write that failed — except those the
        Service now stored under that key holds (a concurrent create of the same
        Service that won, which may have adopted them)."""
        if not claims:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            winner = await self._stored_service(service_key)
            keep = holdings(winner) if winner is not None else set()
            for claim in claims:
                if claim.key not in keep:
                    await self._delete_claim(claim.key, claim.revision)

    async def release(self, svc: dict[str, Any], still: dict[str, Any] | None = None) -> None:
        """Delete the claims ``svc`` holds and ``still`` (its new state) does not,
        if they are recorded for this Service (its uid)."""
        gone = holdings(svc) - (holdings(still) if still is not None else set())
        uid = svc["metadata"].get("uid", "")
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            for key in gone:
                kv = await self._get(key)
                if kv is not None and _owner_of(json.loads(kv.value)).uid == uid:
                    await self._delete_claim(key, kv.revision)

    async def _delete_claim(self, key: str, revision: int) -> None:
        try:
            await self.store.delete(key, revision)
        except (KeyNotFound, RevisionMismatch):
            pass  # gone already, or taken again since: not ours to delete
        except StoreError as exc:
            log.warning("allocator: cannot release %s (%s); the repair pass will", key, exc)

    async def _get(self, key: str) -> KeyValue | None:
        try:
            return await self.store.get(key)
        except StoreError as exc:
            log.warning("allocator: cannot read %s (%s); the repair pass will release it", key, exc)
            return None

    async def _stored_service(self, key: str) -> dict[str, Any] | None:
        kv = await self._get(key)
        return json.loads(kv.value) if kv is not None else None

    # -- repair ----------------------------------------------------------------------------

    async def repair_forever(self) -> None:
        while True:
            await trio.sleep(REPAIR_SECONDS)
            try:
                await self.repair()
            except StoreError as exc:
                log.warning("allocator repair: %s", exc)

    async def repair(self, *, now: float | None = None) -> tuple[int, int]:
        """One pass; returns (claims deleted, claims created)."""
        now = trio.current_time() if now is None else now
        claims = await self._claims()
        revision = max((kv.revision for kv in claims.values()), default=0)
        await self.cache.wait_for(max(revision, await self.store.current_revision()))
        held: dict[str, dict[str, Any]] = {}
        for cached in self.cache.list(SERVICES_PREFIX):
            for key in holdings(cached.obj, self.cidr):
                if key in held:
                    log.warning("allocator repair: %s is held by both %s and %s", key,
                                _name(held[key]), _name(cached.obj))
                held.setdefault(key, cached.obj)
        deleted = await self._drop_orphans(claims, held, now)
        created = await self._record_missing(claims, held)
        return deleted, created

    async def _claims(self) -> dict[str, KeyValue]:
        claims: dict[str, KeyValue] = {}
        for prefix in (SERVICE_IPS, NODE_PORTS):
            items, _ = await self.store.list(prefix)
            claims.update((kv.key, kv) for kv in items)
        return claims

    async def _drop_orphans(self, claims: dict[str, KeyValue], held: dict[str, dict[str, Any]], now: float) -> int:
        orphans = {key: kv for key, kv in claims.items() if key not in held}
        self._orphans = {key: since for key, since in self._orphans.items()
                         if key in orphans and since[0] == orphans[key].revision}
        deleted = 0
        for key, kv in orphans.items():
            _, since = self._orphans.setdefault(key, (kv.revision, now))
            if now - since >= ORPHAN_GRACE:
                await self._delete_claim(key, kv.revision)
                self._orphans.pop(key, None)
                deleted += 1
        return deleted

    async def _record_missing(self, claims: dict[str, KeyValue], held: dict[str, dict[str, Any]]) -> int:
        created = 0
        for key, svc in held.items():
            if key in claims:
                continue
            metadata = svc["metadata"]
            owner = _Owner(f"{SERVICES_PREFIX}{metadata.get('namespace')}/{metadata['name']}", metadata.get("uid", ""))
            try:
                await self.store.create(key, owner.encode())
                created += 1
            except KeyExists:
                pass
        return created


@dataclass(frozen=True, slots=True)
class _Owner:
    """What a claim records: the Service's store key and uid."""

    key: str
    uid: str

    def encode(self) -> bytes:
        return json.dumps({"service": self.key, "uid": self.uid}, separators=(",", ":")).encode()


def _owner_of(value: dict[str, Any]) -> _Owner:
    return _Owner(str(value.get("service", "")), str(value.get("uid", "")))


def ip_key(addr: ipaddress.IPv4Address | str) -> str:
    return f"{SERVICE_IPS}{addr}"


def port_key(protocol: str, port: int) -> str:
    return f"{NODE_PORTS}{protocol.lower()}-{port}"


def holdings(svc: dict[str, Any], cidr: ipaddress.IPv4Network | None = None) -> set[str]:
    """The claim keys of the cluster IPs and node ports a Service holds
    (with ``cidr``: only addresses inside it)."""
    spec = svc.get("spec") or {}
    addresses = (_address(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")])
    keys = {ip_key(a) for a in addresses if a is not None and (cidr is None or a in cidr)}
    keys.update(port_key(p.get("protocol", "TCP"), p["nodePort"]) for p in _ports(spec)
                if isinstance(p.get("nodePort"), int) and p["nodePort"] in NODE_PORT_RANGE)
    return keys


def _ports(spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return (p for p in spec.get("ports") or [] if isinstance(p, dict))


def _name(svc: dict[str, Any]) -> str:
    return f"{svc['metadata'].get('namespace')}/{svc['metadata'].get('name')}"


def _address(text: Any) -> ipaddress.IPv4Address | None:
    if not isinstance(text, str) or not text or text == "None":
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return addr if isinstance(addr, ipaddress.IPv4Address) else None


def _invalid(field: str, what: str) -> ApiError:
    return ApiError.invalid("Service", "", [Cause(field, f"Invalid value: {what}")])
