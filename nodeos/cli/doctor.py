"""``nodeos doctor [--config FILE] [--json]``: check the host before (or while) a node runs on it.

The checks are ``nodeos.doctor``'s; this module picks the config, prints
one line per check (and its fix below it), and exits 0 when nothing failed,
1 when something did. A bad config is one ``error: ...`` line and exit 2,
as for every verb. Without a config file at the default place, the host is
checked as an all-in-one node with default settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nodeos.config import Config, default_config, load
from nodeos.doctor import Check, exit_code, run_checks, summary

__all__ = ["register", "run_doctor"]

DEFAULT_CONFIG = Path("/etc/nodeos/nodeos.toml")
MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check this host for what a node needs (kernel, tools, ports, firewall)",
        description="Check this host for what a node of the config's role needs: kernel modules, ip_forward, "
                    "br_netfilter, nftables, Podman, free ports, cgroups, and the forward-drop trap. Each check is "
                    "ok, warn or fail, with a fix. Exit 0 when nothing fails, 1 otherwise. Run as root: without it "
                    "the firewall, nft and some port checks are skipped as warnings.")
    doctor.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"the node's TOML config (default: {DEFAULT_CONFIG}, else an all-in-one node's defaults)")
    doctor.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    doctor.set_defaults(func=run_doctor)


def _config(path: Path | None) -> tuple[Config, str]:
    """The config to check against, and how to name it; ConfigError (exit 2) for a bad one."""
    if path is None and not DEFAULT_CONFIG.exists():
        return default_config(node={"role": "all"}), f"no {DEFAULT_CONFIG}: an all-in-one node's defaults"
    path = path or DEFAULT_CONFIG
    return load(path), str(path)


def run_doctor(args: argparse.Namespace) -> int:
    config, source = _config(args.config)
    root = os.geteuid() == 0
    checks = run_checks(config, root=root)
    if args.json:
        print(json.dumps({"config": source, "role": config.node.role, "root": root,
                          "checks": [check.as_dict() for check in checks], "ok": exit_code(checks) == 0}))
    else:
        _print(checks, source, config, root)
    return exit_code(checks)


def _print(checks: list[Check], source: str, config: Config, root: bool) -> None:
    out = sys.stdout
    print(f"nodeos doctor: {source} (role {config.node.role}, runtime {config.agent.runtime})", file=out)
    if not root:
        print("not root: the forward-drop trap, nft, and ports below 1024 are not checked (warnings)", file=out)
    width = max((len(check.name) for check in checks), default=0)
    for check in checks:
        print(f"{MARKS[check.status]}  {check.name:<{width}}  {check.detail}", file=out)
        for fix in check.fix:
            print(f"{'':4}  {'':<{width}}  fix: {fix}", file=out)
    print(summary(checks), file=out)
