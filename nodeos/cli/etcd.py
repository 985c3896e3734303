"""``nodeos etcd``: set up and look after the managed etcd of the masters.

    nodeos etcd init --config NODE_TOML                    the first master: CA, certificates, a new cluster
    nodeos etcd join --config NODE_TOML --endpoint URL     another master: member add, then start its daemon
    nodeos etcd member list [--endpoint URL | --config NODE_TOML]
    nodeos etcd member remove NAME [--endpoint URL | --config NODE_TOML]
    nodeos etcd snapshot save FILE [--endpoint URL | --config NODE_TOML]
    nodeos etcd snapshot restore FILE --config NODE_TOML [--force]

``--endpoint`` is an etcd client URL; without it, the local member's URL
from ``--config``. An https endpoint needs ``--config`` too: the cluster CA
and the client certificate are in that node's ``pki/``.

Errors print as one ``error: ...`` line: exit 2 for a bad config or bad
usage, 1 when etcd refuses or cannot be reached.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from nodeos._config_values import server_url
from nodeos.config import Config, load
from nodeos.errors import ConfigError
from nodeos.etcd import membership, snapshot
from nodeos.etcd.gateway import Gateway
from nodeos.etcd.member import LocalMember

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    etcd = subparsers.add_parser("etcd", help="set up and look after the masters' managed etcd",
                                 description="Initialise, join, list, remove, back up and restore etcd members.")
    verbs = etcd.add_subparsers(title="commands", metavar="COMMAND", required=True)

    init = verbs.add_parser("init", help="make this master the first member of a new cluster",
                            description="Create the cluster CA (kept if present), this member's certificates and "
                                        "what its daemon needs to start a new etcd cluster.")
    _config(init, required=True)
    init.set_defaults(func=_run(_init))

    join = verbs.add_parser("join", help="add this master as a member of an existing cluster",
                            description="Add this node through an existing member, then start its daemon. "
                                        "The cluster CA must be in this node's data_dir/pki.")
    _config(join, required=True)
    join.add_argument("--endpoint", required=True, metavar="URL", help="client URL of a member of the cluster")
    join.set_defaults(func=_run(_join))

    member = verbs.add_parser("member", help="list or remove members").add_subparsers(
        title="commands", metavar="COMMAND", required=True)
    listing = member.add_parser("list", help="list the cluster's members")
    _connection(listing)
    listing.set_defaults(func=_run(_list))
    remove = member.add_parser("remove", help="remove a member by name (or ID)")
    remove.add_argument("name", metavar="NAME")
    _connection(remove)
    remove.set_defaults(func=_run(_remove))

    snap = verbs.add_parser("snapshot", help="save or restore a snapshot").add_subparsers(
        title="commands", metavar="COMMAND", required=True)
    save = snap.add_parser("save", help="save a verified snapshot of the keyspace to FILE")
    save.add_argument("file", type=Path, metavar="FILE")
    _connection(save)
    save.set_defaults(func=_run(_save))
    restore = snap.add_parser("restore", help="make this node's member a new one-member cluster from FILE",
                              description="Restore FILE into this node's etcd data directory while its daemon is "
                                          "stopped; the other masters then join it afresh.")
    restore.add_argument("file", type=Path, metavar="FILE")
    _config(restore, required=True)
    restore.add_argument("--force", action="store_true",
                         help="move an existing etcd data directory aside (never deleted) and restore in its place")
    restore.set_defaults(func=_run(_restore))


def _config(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--config", type=Path, required=required, metavar="NODE_TOML",
                        help="the node's TOML config" + ("" if required else
                                                         " (for the local member's URL and TLS files)"))


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="URL", help="client URL of a member (default: --config's member)")
    _config(parser, required=False)


def _run(verb: Callable[[argparse.Namespace], Awaitable[int]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return trio.run(verb, args)
    return run


def _member(args: argparse.Namespace) -> tuple[Config, LocalMember]:
    config = load(args.config)
    return config, LocalMember.from_config(config)


def _gateway(args: argparse.Namespace) -> Gateway:
    """The gateway of ``--endpoint``, else of the local member; TLS files from --config's pki/."""
    local = _member(args)[1] if args.config else None
    if args.endpoint:
        try:
            endpoint = server_url(args.endpoint)
        except ValueError as exc:
            raise ConfigError(f"--endpoint: {exc}") from None
    elif local is not None:
        endpoint = local.client_url
    else:
        raise ConfigError("give --endpoint URL, or --config NODE_TOML for the local member")
    if not endpoint.startswith("https://"):
        return Gateway(endpoint)
    if local is None:
        raise ConfigError(f"--endpoint {endpoint}: an https endpoint needs --config NODE_TOML, whose pki/ "
                          "holds the cluster CA and the etcd client certificate")
    pki = local.pki_dir
    files = (pki / "ca.crt", pki / "etcd-client.crt", pki / "etcd-client.key")
    missing = [f for f in files if not f.exists()]
    if missing:
        raise ConfigError(f"{missing[0]}: no such file (set [etcd] client_tls = true and start the member once, "
                          "or run `nodeos etcd init|join`, to issue it)")
    return Gateway(endpoint, (str(files[0]), str(files[1]), str(files[2])))


async def _init(args: argparse.Namespace) -> int:
    config, member = _member(args)
    bootstrap = await trio.to_thread.run_sync(membership.init_cluster, config)
    print(f"etcd: new cluster {bootstrap.token} with member {member.name} (peer {member.peer_url}); "
          f"CA in {member.pki_dir}.\n"
          f"With [etcd] managed = true in {args.config}, the daemon starts the member. To keep this master's\n"
          f"objects in it:\n\n{member.store_config()}\n\n"
          f"Other masters join with:\n  nodeos etcd join --config THEIR_TOML --endpoint {member.client_url}")
    return 0


async def _join(args: argparse.Namespace) -> int:
    config, member = _member(args)
    async with _gateway(args) as gateway:
        bootstrap, members = await membership.join_cluster(config, gateway)
    urls = [url for m in members for url in m.client_urls]
    print(f"etcd: {member.name} added (peer {member.peer_url}); members: {', '.join(bootstrap.initial_cluster)}.\n"
          f"To keep this master's objects in etcd:\n\n{member.store_config(urls)}\n\n"
          "Start this node's daemon now: until the new member runs, the cluster counts it missing for quorum.")
    return 0


async def _list(args: argparse.Namespace) -> int:
    async with _gateway(args) as gateway:
        members = await membership.list_members(gateway)
    rows = [("ID", "NAME", "PEER URLS", "CLIENT URLS")]
    rows += [(f"{int(m.id):x}", m.name or "(unstarted)", ",".join(m.peer_urls), ",".join(m.client_urls))
             for m in members]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


async def _remove(args: argparse.Namespace) -> int:
    async with _gateway(args) as gateway:
        removed = await membership.remove_member(gateway, args.name)
    print(f"etcd: member {removed.name or removed.id} removed")
    return 0


async def _save(args: argparse.Namespace) -> int:
    async with _gateway(args) as gateway:
        status = await snapshot.save_snapshot(gateway, args.file)
    print(f"etcd: snapshot saved to {args.file} (revision {status.revision}, {status.total_keys} keys, "
          f"{status.total_size} bytes)")
    return 0


async def _restore(args: argparse.Namespace) -> int:
    config, member = _member(args)
    status, moved = await trio.to_thread.run_sync(
        lambda: snapshot.restore_snapshot(config, args.file, force=args.force))
    aside = f"; the old directory is now {moved}" if moved else ""
    print(f"etcd: {member.etcd_dir} restored from {args.file} (revision {status.revision}, "
          f"{status.total_keys} keys) as a new one-member cluster{aside}.\n"
          "Start the daemon; other masters join it afresh with `nodeos etcd join`.")
    return 0
