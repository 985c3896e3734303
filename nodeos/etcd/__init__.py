"""The managed etcd: a master that runs its own etcd member, as k3s' embedded etcd, but Debian's binary.

- ``member``: this node's member — files under the data dir, URLs, certificates, the bootstrap decision;
- ``process``: the daemon component that runs ``etcd`` as a supervised child;
- ``membership``: init a cluster, join one, list and remove members;
- ``snapshot``: save a verified snapshot from a live member, restore one into a new member;
- ``gateway``: the small JSON-gateway client these use.
"""

from nodeos.etcd.gateway import EtcdError, Gateway
from nodeos.etcd.member import Bootstrap, LocalMember
from nodeos.etcd.membership import Member, init_cluster, join_cluster, list_members, remove_member
from nodeos.etcd.process import EtcdExited, check_startable, run_etcd
from nodeos.etcd.snapshot import SnapshotError, SnapshotStatus, restore_snapshot, save_snapshot

__all__ = [
    "Bootstrap",
    "EtcdError",
    "EtcdExited",
    "Gateway",
    "LocalMember",
    "Member",
    "SnapshotError",
    "SnapshotStatus",
    "check_startable",
    "init_cluster",
    "join_cluster",
    "list_members",
    "remove_member",
    "restore_snapshot",
    "run_etcd",
    "save_snapshot",
]
