"""The trap's boundary with the host: the ``nft`` and ``iptables-legacy`` commands, one check and remedy."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nodeos.config import ClusterConfig
from nodeos.network.forwarding.rules import AcceptRule, DroppingChain, accept_rules, dropping_chains, remedy_script

__all__ = ["ForwardReport", "NftError", "apply_script", "check_and_remedy", "legacy_forward_drop", "read_ruleset"]


@dataclass
class ForwardReport:
    """What one check found and did: the dropping chains as they are after any remedy."""

    chains: list[DroppingChain]
    rules: tuple[AcceptRule, ...]
    inserted: dict[str, list[str]] = field(default_factory=dict)  # chain name -> comments inserted now
    errors: dict[str, str] = field(default_factory=dict)  # chain name -> why the remedy failed
    legacy: bool = False  # iptables-legacy's FORWARD has policy DROP, which nodeos leaves alone

    @property
    def unremedied(self) -> list[DroppingChain]:
        return [chain for chain in self.chains if chain.missing(self.rules)]

    @property
    def blocked(self) -> bool:
        return bool(self.unremedied) or self.legacy


class NftError(Exception):
    """``nft`` failed or is missing; the message is its own, on one line."""


def read_ruleset(prefix: Sequence[str] = ()) -> dict[str, Any]:
    """The current ruleset as ``nft -j list ruleset`` gives it (blocking).

    ``prefix`` runs the command under another, e.g. ``ip netns exec NS`` (how tests reach a
    namespace of their own); () runs it in the daemon's namespace.
    """
    return json.loads(_run([*prefix, "nft", "-j", "list", "ruleset"]) or "{}")


def apply_script(script: str, prefix: Sequence[str] = ()) -> None:
    """Apply an ``nft -f`` script as one transaction (blocking)."""
    _run([*prefix, "nft", "-f", "-"], script)


def _run(command: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(f"{shlex.join(command)}: {exc}") from None
    if done.returncode != 0:
        raise NftError(_first_error(done.stderr) or f"{shlex.join(command)} exited with {done.returncode}")
    return done.stdout


def _first_error(stderr: str) -> str:
    """nft's first complaint, without the script excerpt it repeats for every line of a transaction."""
    for line in stderr.splitlines():
        if "Error: " in line:
            return line.split("Error: ", 1)[1].strip()
    return " ".join(stderr.split())


def legacy_forward_drop(prefix: Sequence[str] = ()) -> bool:
    """Whether iptables-legacy's FORWARD chain has policy DROP (blocking).

    Only asked when the legacy filter table exists (``/proc/net/ip_tables_names``): listing it
    otherwise would load x_tables and create the table just to look.
    """
    if shutil.which("iptables-legacy") is None:
        return False
    try:
        names = _run([*prefix, "cat", "/proc/net/ip_tables_names"])
        return "filter" in names.split() and "-P FORWARD DROP" in _run(
            [*prefix, "iptables-legacy", "-S", "FORWARD"]).splitlines()
    except NftError:
        return False


def check_and_remedy(cluster: ClusterConfig, prefix: Sequence[str] = (), *, remedy: bool = True) -> ForwardReport:
    """Find dropping forward chains and, with ``remedy``, insert the missing accepts (blocking).

    Each chain gets its own transaction, so one chain that refuses (say, a table flagged ``owner``
    by another program) does not keep the others unremedied. The report describes the ruleset as
    read again after the inserts, so it says what is, not what was attempted.
    """
    rules = accept_rules(cluster)
    report = ForwardReport(dropping_chains(read_ruleset(prefix)), rules)
    if remedy and report.unremedied:
        for chain in report.unremedied:
            try:
                apply_script(remedy_script([chain], rules), prefix)
                report.inserted[chain.name] = [rule.comment for rule in chain.missing(rules)]
            except NftError as exc:
                report.errors[chain.name] = str(exc)
        report.chains = dropping_chains(read_ruleset(prefix))
    report.legacy = legacy_forward_drop(prefix)
    return report
