"""``nodeos token create|list|delete``: bootstrap tokens, the one-time credentials hosts join with.

On a master, run as root: the verb reads the node's TOML (``--config``) and
logs in as the node's own components do (its client certificate on the TLS
port, else the plain port). With ``--server`` or ``--kubeconfig`` it goes
through a kubeconfig like the other verbs, as any administrator.

``create`` stores the token as a Secret (nodeos.api.auth.bootstrap: only its
hash) and prints the command that joins a host, kubeadm's way::

    nodeos join --server https://10.0.0.1:6443 --token abcdef.0123456789abcdef --ca-hash sha256:…

The server URL and the CA hash come from the cluster-info ConfigMap, the
very object the joining host will read and check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from nodeos.api.auth.bootstrap import NAMESPACE, SECRET_TYPE, new_token, secret_name, token_secret, token_state
from nodeos.api.clusterinfo import CLUSTER_INFO, ca_from_kubeconfig, ca_hash
from nodeos.api.clusterinfo import NAMESPACE as PUBLIC
from nodeos.api.kinds import by_plural
from nodeos.cli import printers
from nodeos.cli.common import CliError, global_flags, open_client
from nodeos.cli.logs import duration
from nodeos.client import ApiClient, Connection
from nodeos.config import load
from nodeos.errors import ApiError, ConfigError

__all__ = ["join_command", "register", "ttl"]

DEFAULT_CONFIG = Path("/etc/nodeos/nodeos.toml")
SECRETS = by_plural("", "v1", "secrets")
CONFIG_MAPS = by_plural("", "v1", "configmaps")


def ttl(text: str) -> dt.timedelta | None:
    """``--ttl``: a duration (``24h``, ``30m``, ``1s``), or ``0`` for a token that never expires."""
    return None if text == "0" else dt.timedelta(seconds=duration(text))


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("token", help="bootstrap tokens for joining hosts (on a master)",
                              description="Create, list and delete bootstrap tokens: a new host joins the "
                                          "cluster once with one (nodeos join).")
    verbs = p.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parent = global_flags()
    parent.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                        help=f"the master's TOML config, used unless --server/--kubeconfig (default: "
                             f"{DEFAULT_CONFIG})")
    create = verbs.add_parser("create", parents=[parent], help="create a token and print its join command")
    create.add_argument("--ttl", type=ttl, default=dt.timedelta(hours=24), metavar="DURATION",
                        help="how long the token may be used, e.g. 1h, 30m; 0: never expires (default: 24h)")
    create.add_argument("--description", default="", help="what the token is for, shown by token list")
    create.set_defaults(func=_sync(create_token))
    listing = verbs.add_parser("list", parents=[parent], help="list the tokens (never their secrets)")
    listing.set_defaults(func=_sync(list_tokens))
    delete = verbs.add_parser("delete", parents=[parent], help="delete tokens by id")
    delete.add_argument("ids", nargs="+", metavar="ID", help="token ids (or whole tokens)")
    delete.set_defaults(func=_sync(delete_tokens))


def _sync(verb: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        return trio.run(_with_client, verb, args)
    return run


async def _with_client(verb: Any, args: argparse.Namespace) -> int:
    connection = await trio.to_thread.run_sync(master_connection, args)
    client = open_client(args) if connection is None else ApiClient(connection, user_agent="nodeos-cli")
    async with client as api:
        return int(await verb(args, api))


def master_connection(args: argparse.Namespace) -> Connection | None:
    """The master's own credential from its TOML; None to use the kubeconfig (``--server``/``--kubeconfig``)."""
    config_path = getattr(args, "config", None)
    if config_path is None and (args.server or args.kubeconfig or not DEFAULT_CONFIG.exists()):
        return None
    config = load(config_path or DEFAULT_CONFIG)
    if config.node.role == "worker":
        raise ConfigError(f"{config.source}: [node] role: a worker serves no API; run nodeos token on a master")
    if config.api.tls:
        from nodeos.api.tls import local_connection

        return local_connection(config)
    address = config.api.insecure_listen or config.api.listen
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(address.host, address.host)
    return Connection(server=f"http://{host}:{address.port}")


async def create_token(args: argparse.Namespace, api: ApiClient) -> int:
    assert SECRETS is not None
    server, digest = await _cluster_info(api)
    token = new_token()
    await api.create(SECRETS, token_secret(token, args.ttl, args.description), NAMESPACE)
    print(join_command(server, str(token), digest))
    if _loopback(server):
        print(f"note: {server} is this host's loopback: other hosts cannot join through it; set the master's "
              "[api] listen to an address they reach (tls = true allows it)", file=sys.stderr)
    return 0


def _loopback(server: str) -> bool:
    host = urlsplit(server).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def join_command(server: str, token: str, digest: str) -> str:
    return f"nodeos join --server {server} --token {token} --ca-hash {digest}"


async def _cluster_info(api: ApiClient) -> tuple[str, str]:
    """The URL and CA hash a joining host will see; refuses on a master that serves no TLS."""
    assert CONFIG_MAPS is not None
    try:
        info = await api.get(CONFIG_MAPS, CLUSTER_INFO, PUBLIC)
    except ApiError as exc:
        if exc.code == 404:
            raise CliError("the cluster has no kube-public/cluster-info: its masters serve no TLS "
                           "([api] tls = true), so no host can join it securely") from None
        raise
    try:
        ca, server = ca_from_kubeconfig(str((info.get("data") or {}).get("kubeconfig", "")))
        return server, ca_hash(ca)
    except ValueError as exc:
        raise CliError(f"kube-public/cluster-info: {exc}") from None


async def list_tokens(args: argparse.Namespace, api: ApiClient) -> int:
    assert SECRETS is not None
    secrets = (await api.list_all(SECRETS, NAMESPACE)).get("items") or []
    now = dt.datetime.now(dt.UTC)
    rows = []
    for secret in secrets:
        state = token_state(secret) if secret.get("type") == SECRET_TYPE else None
        if state is None:
            continue
        left = "<forever>" if state.expires is None else "<expired>" if state.expired(now) else \
            printers.human_duration(int((state.expires - now).total_seconds()))
        expires = "<never>" if state.expires is None else state.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append([state.id, left, expires, state.used_by or "<unused>", state.description or "<none>"])
    if not rows:
        print(f"No bootstrap tokens in {NAMESPACE}.", file=sys.stderr)
        return 0
    for line in printers.TablePrinter(["ID", "TTL", "EXPIRES", "USED BY", "DESCRIPTION"], upper=False).lines(rows):
        print(line)
    return 0


async def delete_tokens(args: argparse.Namespace, api: ApiClient) -> int:
    assert SECRETS is not None
    failed = 0
    for given in args.ids:
        token_id = given.split(".", 1)[0]
        try:
            await api.delete(SECRETS, secret_name(token_id), NAMESPACE)
        except ApiError as exc:
            if exc.code != 404:
                raise
            print(f"error: bootstrap token {token_id!r} not found", file=sys.stderr)
            failed = 1
            continue
        print(f"bootstrap token {token_id!r} deleted")
    return failed
