"""``nodeos daemon`` and ``nodeos up``: run a node.

``daemon`` runs what a config file says; it is what the systemd unit runs.
``up`` is the all-in-one for trying nodeos on one machine: it writes a
single-node config (role "all") and a kubeconfig under a data directory,
tells how to point kubectl at it, then runs the same daemon.

Both print a bad configuration as one ``error: ...`` line and exit 2, never
a traceback: the message names the file and the key, which is all one needs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio
import yaml

from nodeos.cli.progress import Progress
from nodeos.cli.upprogress import TerminalNotifier
from nodeos.config import RUNTIMES, Address, Config, build, dump, load
from nodeos.daemon import DrainTimeout, run_daemon
from nodeos.errors import ConfigError
from nodeos.log import FORMATS, LEVELS, setup_logging
from nodeos.preflight import AddressUnavailable, check_ports
from nodeos.systemd import Notifier

__all__ = ["register", "run", "run_up"]

DEFAULT_CONFIG = Path("/etc/nodeos/nodeos.toml")
EXIT_CONFIG = 2  # the unit's RestartPreventExitStatus: restarting cannot fix a bad config


def default_data_dir() -> Path:
    """Where ``nodeos up`` keeps its node: the system's place for root, the user's otherwise."""
    if os.geteuid() == 0:
        return Path("/var/lib/nodeos")
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "nodeos"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``daemon`` and ``up`` commands; each sets ``func`` to its runner."""
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument("--log-format", choices=FORMATS, default="text",
                                 help="text (journald-aware) or json, one object per line (default: text)")
    logging_options.add_argument("--log-level", choices=LEVELS, default="info",
                                 help="least severe level logged (default: info)")

    daemon = subparsers.add_parser(
        "daemon", parents=[logging_options], help="run this node as its config file says",
        description="Run the components of this node's role until SIGTERM or SIGINT.")
    daemon.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"the node's TOML config (default: {DEFAULT_CONFIG})")
    daemon.set_defaults(func=run)

    up = subparsers.add_parser(
        "up", parents=[logging_options], help="run a one-node cluster, with a kubeconfig for kubectl",
        description="Write a single-node config and a kubeconfig under DIR, then run the daemon.")
    up.add_argument("--data-dir", type=Path, default=default_data_dir(), metavar="DIR",
                    help="where the node keeps its config, kubeconfig and store (default: %(default)s)")
    up.add_argument("--name", help="node name (default: the host name)")
    up.add_argument("--listen", default="127.0.0.1:6443", metavar="HOST:PORT",
                    help="the API's secure port; 0.0.0.0:6443 to let workers join (default: %(default)s)")
    up.add_argument("--insecure-listen", default=None, metavar="HOST:PORT",
                    help="also serve plain HTTP here, without authentication (its caller is an administrator): "
                         "loopback only; off by default")
    up.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                    help="serve the secure port over TLS with authentication, the kubeconfig holding the cluster "
                         "CA and an admin client certificate (default); --no-tls: plain HTTP on a loopback listen")
    up.add_argument("--runtime", choices=RUNTIMES, default="podman",
                    help="run pods on Podman, or on a simulator that runs nothing (default: %(default)s)")
    up.add_argument("--podman-socket", metavar="PATH", default="/run/nodeos/podman.sock",
                    help="the libpod API socket; started there when nothing answers (default: %(default)s)")
    up.add_argument("--containers-conf", metavar="FILE", default="",
                    help="CONTAINERS_CONF for the Podman service nodeos starts, for hosts that need one "
                         "(see config/containers.conf)")
    up.set_defaults(func=run_up)


def run(args: argparse.Namespace) -> int:
    """``nodeos daemon``: load the config, then run the node until it is stopped."""
    try:
        config = load(args.config)
    except ConfigError as exc:
        return _fail(exc)
    return _run_daemon(config, args)


def run_up(args: argparse.Namespace) -> int:
    """``nodeos up``: write a one-node config and a kubeconfig, say how to use them, run the node."""
    data_dir = args.data_dir.expanduser().absolute()
    node = {"role": "all", "data_dir": str(data_dir)} | ({"name": args.name} if args.name else {})
    api = {"listen": args.listen, "insecure_listen": args.insecure_listen, "tls": args.tls}
    podman = {"socket": args.podman_socket, "containers_conf": _absolute(args.containers_conf)}
    try:
        config = build({"node": node, "api": api, "agent": {"runtime": args.runtime}, "podman": podman},
                       "nodeos up")
        config_path, kubeconfig_path = _write_files(config, data_dir)
    except ConfigError as exc:
        return _fail(exc)
    log_path = data_dir / "nodeos.log" if sys.stderr.isatty() else None  # a terminal shows progress instead
    print(f"nodeos up: node {config.node.name!r} (role {config.node.role}), data in {data_dir}\n"
          f"  config:     {config_path}\n"
          f"  kubeconfig: {kubeconfig_path}\n" + (f"  log:        {log_path}\n" if log_path else "") +
          f"To use kubectl and the dashboard, in another shell:\n"
          f"  export KUBECONFIG={kubeconfig_path}\n"
          f"  kubectl get namespaces\n"
          f"  nodeos dashboard", flush=True)
    return _run_daemon(replace(config, source=config_path), args, log_path)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute()) if path else ""


def _write_files(config: Config, data_dir: Path) -> tuple[Path, Path]:
    config_path, kubeconfig_path = data_dir / "nodeos.toml", data_dir / "kubeconfig"
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        config_path.write_text(
            "# Written by `nodeos up`, which rewrites it at every start. To keep changes,\n"
            "# edit a copy and run `nodeos daemon --config COPY`.\n\n" + dump(config))
        _write_private(kubeconfig_path, kubeconfig(config))
    except OSError as exc:
        raise ConfigError(f"{exc.filename or data_dir}: cannot write: {exc.strerror}") from None
    return config_path, kubeconfig_path


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads: a kubeconfig carries credentials once the API has them."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


def kubeconfig(config: Config) -> str:
    """A kubeconfig for kubectl on this machine: the secure port as admin with ``[api] tls``, else plain HTTP."""
    if config.api.tls:
        from nodeos.cli.kubeconfig import ADMIN, ADMIN_GROUPS, kubeconfig_for

        return kubeconfig_for(config, ADMIN, ADMIN_GROUPS)
    address = config.api.insecure_listen or config.api.listen
    server = f"http://{_local(address)}"
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "nodeos", "cluster": {"server": server}}],
        "users": [{"name": "nodeos", "user": {}}],
        "contexts": [{"name": "nodeos", "context": {"cluster": "nodeos", "user": "nodeos"}}],
        "current-context": "nodeos",
    }, sort_keys=False)


def _local(address: Address) -> Address:
    """The address to connect to: a wildcard listener is reached over loopback."""
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}
    return Address(wildcard.get(address.host, address.host), address.port)


def _run_daemon(config: Config, args: argparse.Namespace, log_path: Path | None = None) -> int:
    """Run the node; with ``log_path`` (``up`` on a terminal) the log goes there and stderr shows progress."""
    notifier = Notifier.from_environment()  # READY=1, STATUS=, WATCHDOG=1 under systemd; else nothing
    with contextlib.ExitStack() as stack:
        if log_path is None:
            setup_logging(args.log_level, args.log_format)
        else:
            try:
                log_file = stack.enter_context(log_path.open("a", buffering=1))
            except OSError as exc:
                return _fail(ConfigError(f"{log_path}: cannot write the log: {exc.strerror}"))
            setup_logging(args.log_level, args.log_format, stream=log_file)
            notifier = TerminalNotifier(notifier, stack.enter_context(Progress(sys.stderr)))
        return _run_node(config, notifier)


def _run_node(config: Config, notifier: Notifier) -> int:
    try:
        _check_tls(config)
        check_ports(config)  # a port another process holds: one line, not a component's restart loop
        trio.run(partial(run_daemon, config, notifier=notifier))
    except ConfigError as exc:
        return _fail(exc)
    except AddressUnavailable as exc:  # not EXIT_CONFIG: the unit retries (a port's holder leaving, the network)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except DrainTimeout:  # logged where it happened; systemd sees the failure
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the daemon's signal handler was in place
        return 130
    return 0


def _check_tls(config: Config) -> None:
    """A master's unusable CA or serving files, or broken policy file, as one line before anything starts
    (not a restart loop); so are a worker's unreadable credential files."""
    from nodeos.credentials import check_credentials

    check_credentials(config)
    if config.api.tls and config.node.role != "worker":
        from nodeos.api.authz import check_policy
        from nodeos.api.tls import check_files

        check_files(config)
        check_policy(config)


def _fail(exc: ConfigError) -> int:
    print(f"error: {exc}", file=sys.stderr)
    return EXIT_CONFIG
