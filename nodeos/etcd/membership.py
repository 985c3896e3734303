"""Who is in the etcd cluster: make it (init), join it, list and remove members.

``init_cluster`` and ``join_cluster`` only prepare this node (CA,
certificates, the bootstrap file); the daemon's managed etcd then starts
the member. Join adds the member *before* it runs, as etcd requires: from
that moment the cluster counts it for quorum, so a one-member cluster is
unavailable until the new member starts — start the daemon right after.

Both refuse a node whose etcd data directory already exists: its member
already belongs to a cluster, and reusing it for another would lose data.
A join repeated after a crash (member added, bootstrap not yet written)
finds its own peer URL among the unstarted members and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import trio

from nodeos import pki
from nodeos.config import Config
from nodeos.errors import ConfigError
from nodeos.etcd.gateway import EtcdError, Gateway
from nodeos.etcd.member import Bootstrap, LocalMember

__all__ = ["REMOVE_PATIENCE", "Member", "add_member", "init_cluster", "join_cluster", "list_members",
           "remove_member"]

REMOVE_PATIENCE = 10.0  # how long a removal waits for etcd to find the cluster healthy


@dataclass(frozen=True)
class Member:
    id: str  # etcd's uint64 member ID, as the gateway writes it: a decimal string
    name: str  # "" until the member has started once
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Member:
        return cls(str(data["ID"]), data.get("name", ""), tuple(data.get("peerURLs", ())),
                   tuple(data.get("clientURLs", ())))

    @property
    def started(self) -> bool:
        return bool(self.name)


def _refuse_initialized(member: LocalMember) -> None:
    if member.initialized:
        raise ConfigError(f"{member.source}: this node already has an etcd member (data in {member.etcd_dir}); "
                          "remove it from its cluster and delete that directory first")


def init_cluster(config: Config) -> Bootstrap:
    """Prepare the first master: the cluster CA (kept if there), certificates, a new-cluster bootstrap.

    Blocking (key generation, files): run it in a thread from async code.
    """
    member = LocalMember.from_config(config)
    _refuse_initialized(member)
    _make_data_dir(member)
    pki.ensure_ca(member.pki_dir)
    member.certificates()
    bootstrap = Bootstrap.new_cluster(member.name, member.peer_url)
    bootstrap.write(member.bootstrap_path)
    return bootstrap


async def join_cluster(config: Config, gateway: Gateway) -> tuple[Bootstrap, list[Member]]:
    """Add this node as a member through ``gateway`` and write its existing-cluster bootstrap.

    Returns the bootstrap and the members after the addition.
    """
    member = LocalMember.from_config(config)
    _refuse_initialized(member)
    await trio.to_thread.run_sync(_make_data_dir, member)
    await trio.to_thread.run_sync(member.certificates)  # the CA must be here: a clear error if not
    members = await list_members(gateway)
    for other in members:
        if other.name == member.name and member.peer_url not in other.peer_urls:
            raise EtcdError(f"a member named {member.name} is already in the cluster "
                            f"(peer {', '.join(other.peer_urls)}): remove it first with "
                            f"`nodeos etcd member remove {member.name}`")
        if member.peer_url in other.peer_urls and other.started and other.name != member.name:
            raise EtcdError(f"peer URL {member.peer_url} belongs to member {other.name}: set [etcd] "
                            "advertise_address or peer_listen to this node's own")
    if not any(member.peer_url in other.peer_urls for other in members):
        _, members = await add_member(gateway, member.peer_url)
    initial = {}
    for other in members:
        name = member.name if member.peer_url in other.peer_urls else other.name
        if not name:
            raise EtcdError(f"member {other.id} (peer {', '.join(other.peer_urls)}) was added but never started: "
                            "start it, or remove it with `nodeos etcd member remove`, before adding another")
        initial[name] = other.peer_urls[0]
    bootstrap = Bootstrap("existing", initial, "")  # the token only matters to a new cluster
    await trio.to_thread.run_sync(bootstrap.write, member.bootstrap_path)
    return bootstrap, members


async def list_members(gateway: Gateway) -> list[Member]:
    answer = await gateway.call("/v3/cluster/member/list")
    return [Member.from_json(m) for m in answer.get("members", [])]


async def add_member(gateway: Gateway, peer_url: str) -> tuple[Member, list[Member]]:
    """Add a member by its peer URL; the new member and the whole list after the change."""
    answer = await gateway.call("/v3/cluster/member/add", {"peerURLs": [peer_url]})
    return Member.from_json(answer["member"]), [Member.from_json(m) for m in answer.get("members", [])]


async def remove_member(gateway: Gateway, name: str) -> Member:
    """Remove the member called ``name`` (or with that ID, hex as listed or decimal, for one never started)."""
    members = await list_members(gateway)
    found = [m for m in members if name in (m.name, m.id, f"{int(m.id):x}")]
    if not found:
        known = ", ".join(m.name or m.id for m in members)
        raise EtcdError(f'no member "{name}" in the cluster (members: {known})')
    await _remove_patiently(gateway, found[0].id)
    return found[0]


async def _remove_patiently(gateway: Gateway, member_id: str) -> None:
    """Remove, retrying while etcd calls the cluster unhealthy.

    etcd refuses a removal unless its leader has been connected to every
    other member for the last 5 s (so that the removal cannot break quorum),
    which a member that just started, or just flapped, has not yet been.
    """
    with trio.move_on_after(REMOVE_PATIENCE):
        while True:
            try:
                await gateway.call("/v3/cluster/member/remove", {"ID": member_id})
                return
            except EtcdError as exc:
                if "unhealthy cluster" not in str(exc):
                    raise
            await trio.sleep(0.5)
    raise EtcdError(f"etcd at {gateway.endpoint}: the cluster stayed unhealthy for {REMOVE_PATIENCE:.0f} s: "
                    "etcd removes a member only while all the others are connected")


def _make_data_dir(member: LocalMember) -> None:
    try:
        member.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{member.source}: [node] data_dir: cannot create {member.data_dir}: "
                          f"{exc.strerror}") from None
