"""``nodeos kubeconfig``: print a kubeconfig for the secure port, with a fresh credential, on a master.

Why on the master: it holds the cluster CA's key, so it can hand out a
client certificate (CN the user, O its groups — Kubernetes' rule) without
any request to the API, even before the daemon first started (the CA made
here is the one the daemon then reuses). The certificate's key is printed,
never stored on the master. ``--token`` hands out a bearer token instead,
added hashed to the token file; it can be revoked by deleting its line.

The default user is ``admin`` in ``system:masters``, the administrators.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from nodeos.config import Config, load
from nodeos.errors import ConfigError

__all__ = ["kubeconfig_for", "register", "run"]

DEFAULT_CONFIG = Path("/etc/nodeos/nodeos.toml")
ADMIN = "admin"
ADMIN_GROUPS = ("system:masters",)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "kubeconfig", help="print a kubeconfig for this master's secure port (TLS)",
        description="Print a kubeconfig for kubectl and the nodeos CLI: the cluster CA and a new credential "
                    "(a client certificate from the CA, or with --token a bearer token). Run it on a master.")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"the master's TOML config (default: {DEFAULT_CONFIG})")
    p.add_argument("--user", default=ADMIN, help="the user name (default: admin, an administrator)")
    p.add_argument("--group", action="append", dest="groups", metavar="GROUP",
                   help="a group of the user, repeatable (default for admin: system:masters; else none)")
    p.add_argument("--token", action="store_true", help="a bearer token, added to the token file, "
                                                          "instead of a client certificate")
    p.add_argument("--server", metavar="URL", help="the URL in the kubeconfig (default: https://LISTEN, "
                                                   "loopback for a wildcard listen)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
        groups = tuple(args.groups) if args.groups is not None else (ADMIN_GROUPS if args.user == ADMIN else ())
        text = kubeconfig_for(config, args.user, groups, token=args.token, server=args.server)
    except ConfigError as exc:
        print(f"error: nodeos kubeconfig: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def kubeconfig_for(config: Config, user: str, groups: tuple[str, ...] = (), *, token: bool = False,
                   server: str | None = None) -> str:
    """The kubeconfig text; ConfigError (one line) when this node cannot issue it."""
    # Imported here: the server's modules are not needed by the other verbs.
    from nodeos.api.auth.tokens import add_token
    from nodeos.api.server import token_path
    from nodeos.api.tls import local_url, pki_dir
    from nodeos.pki import ensure_ca, issue_certificate

    _check_master(config)
    if not user or any(c in user for c in ',"\n/'):
        raise ConfigError(f"--user {user!r}: not a user name (no commas, quotes, slashes)")
    ca = ensure_ca(pki_dir(config))
    credential: dict[str, str]
    if token:
        credential = {"token": add_token(token_path(config), user, groups)}
    else:
        with tempfile.TemporaryDirectory(prefix="nodeos-kubeconfig-") as tmp:
            pair = issue_certificate(ca, Path(tmp), "user", common_name=user, organizations=groups, usage="client")
            credential = {"client-certificate-data": _b64(pair.cert_path.read_bytes()),
                          "client-key-data": _b64(pair.key_path.read_bytes())}
    cluster = {"server": server or local_url(config),
               "certificate-authority-data": _b64(ca.cert_path.read_bytes())}
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "nodeos", "cluster": cluster}],
        "users": [{"name": user, "user": credential}],
        "contexts": [{"name": f"{user}@nodeos", "context": {"cluster": "nodeos", "user": user}}],
        "current-context": f"{user}@nodeos",
        "preferences": {},
    }, sort_keys=False)


def _check_master(config: Config) -> None:
    where = config.source or "<config>"
    if config.node.role == "worker":
        raise ConfigError(f"{where}: [node] role: a worker has no cluster CA; run nodeos kubeconfig on a master")
    if not config.api.tls:
        raise ConfigError(f"{where}: [api] tls: is false, so the secure port serves plain HTTP without "
                          "authentication; set tls = true and restart the daemon")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
