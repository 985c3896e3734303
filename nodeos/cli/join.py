"""``nodeos join``: make this host a worker of a cluster, with a bootstrap token, pinning the CA by its hash.

The steps, kubeadm's trust model:

1. *Discovery*: read ``kube-public/cluster-info`` anonymously over TLS
   **without** verifying the server (nothing to verify it with yet), and
   refuse unless its CA's hash (SHA-256 of the SubjectPublicKeyInfo) is the
   ``--ca-hash`` the operator copied from ``nodeos token create``. From here
   on, only that CA is trusted.
2. *Join*: make two keys (ECDSA P-256; they never leave the host) and two
   CSRs — the node's login, and its agent port's serving certificate naming
   the node and its address (``--address``, default the default route's) —
   and ``POST /nodeos/v1/join`` with the token: the master consumes the token
   and answers with both certificates (``system:node:<name>`` in
   ``system:nodes``), the masters' URLs, the cluster's ranges and DNS domain.
   No shared secret: the API server reaches the agent with its own client
   certificate, which the agent checks (nodeos.agent.tls).
3. *Write*: ``<data_dir>/pki/{ca.crt,node.crt,node.key,agent.crt,agent.key}``
   (keys 0600) and the worker's TOML (role worker, ``[api] servers`` and the
   credential files, ``[agent]`` address and serving files, ``[cluster]``,
   ``[dns] domain``).
4. *Start*: ``systemctl restart nodeos`` when systemd runs the host and has
   the unit, then wait for the Node to be Ready; otherwise exec ``nodeos
   daemon`` in the foreground. ``--no-start`` stops after writing.

Every refusal (a malformed flag, an existing config without ``--force``, an
unreachable server, a CA hash mismatch, a refused token) is one line on
stderr and exit 1, and happens before anything is written; the checks that
need no network come first, so a typo does not spend the token.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nodeos._config_values import RUNTIMES, host_ip, node_name
from nodeos.agent.host import default_address
from nodeos.api.auth.bootstrap import parse_token
from nodeos.api.clusterinfo import CLUSTER_INFO, NAMESPACE, ca_from_kubeconfig, ca_hash
from nodeos.cli.progress import Progress
from nodeos.config import build, dump
from nodeos.errors import ConfigError, NodeosError

__all__ = ["JoinError", "JoinPlan", "packaged_and_unchanged", "parse_ca_hash", "register", "run"]

DEFAULT_CONFIG = Path("/etc/nodeos/nodeos.toml")
DEFAULT_DATA_DIR = Path("/var/lib/nodeos")
JOIN_PATH = "/nodeos/v1/join"
INFO_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{CLUSTER_INFO}"
TIMEOUT = 15.0
READY_TIMEOUT = 180.0
UNIT = "nodeos.service"
DPKG_STATUS = Path("/var/lib/dpkg/status")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")


class JoinError(NodeosError):
    """Why the join stopped; one line, printed as ``error: nodeos join: ...``."""


@dataclass(frozen=True)
class JoinPlan:
    """The checked flags: nothing here has touched the network or the disk."""

    server: str
    token: str
    ca_hash: str
    name: str
    config_path: Path
    data_dir: Path
    runtime: str | None
    start: bool
    force: bool
    address: str = "127.0.0.1"  # the node's InternalIP: the API server dials its agent there

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "join", help="join this host to a cluster as a worker, with a bootstrap token",
        description="Join this host to a cluster as a worker: check the master's CA against --ca-hash, trade the "
                    "bootstrap token for a node certificate, write the worker's config and credentials, start. "
                    "Get the command from `nodeos token create` on a master.")
    p.add_argument("--server", required=True, metavar="URL", help="a master's secure port, https://HOST:PORT")
    p.add_argument("--token", required=True, metavar="ID.SECRET", help="a bootstrap token (nodeos token create)")
    p.add_argument("--ca-hash", required=True, metavar="sha256:HEX",
                   help="the cluster CA's public key hash, as nodeos token create prints it")
    p.add_argument("--name", help="this node's name (default: the host name)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                   help=f"where to write the worker's config (default: {DEFAULT_CONFIG})")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
                   help=f"the node's data directory, for its credentials (default: {DEFAULT_DATA_DIR})")
    p.add_argument("--address", metavar="IP", help="this node's address, where the API server reaches its agent "
                                                   "(default: the address of the default route)")
    p.add_argument("--runtime", choices=RUNTIMES, help="run pods on Podman (the default) or on the simulator")
    p.add_argument("--no-start", dest="start", action="store_false", help="write the files, start nothing")
    p.add_argument("--force", action="store_true", help="overwrite an existing config and credentials")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = make_plan(args)
        with Progress() as progress:
            answer = trio.run(_join, plan, progress)
            written = write_files(plan, answer)
            progress.done(f"node {plan.name}: credentials and config written ({plan.config_path})")
        if not plan.start:
            print(f"not started (--no-start); start it with: nodeos daemon --config {plan.config_path}")
            return 0
        return start(plan, written)
    except (JoinError, ConfigError) as exc:
        print(f"error: nodeos join: {exc}", file=sys.stderr)
        return 1


# -- 0: the flags, before any request ---------------------------------------------------------------------

def parse_ca_hash(text: str) -> str:
    value = text.strip().lower()
    if not _HASH.fullmatch(value):
        raise JoinError(f"--ca-hash {text!r}: expected sha256: and 64 hex digits, as nodeos token create prints it")
    return value


def make_plan(args: argparse.Namespace) -> JoinPlan:
    try:
        token = str(parse_token(args.token))
    except ValueError as exc:
        raise JoinError(f"--token: {exc}") from None
    digest = parse_ca_hash(args.ca_hash)
    server = args.server.rstrip("/")
    if not re.fullmatch(r"https://[^/\s]+", server):
        raise JoinError(f"--server {args.server!r}: expected https://HOST:PORT, a master's secure port")
    try:
        name = node_name(args.name or socket.gethostname().lower())
    except ValueError as exc:
        raise JoinError(f"--name: {exc}") from None
    try:
        address = host_ip(args.address) if args.address else default_address()
    except ValueError as exc:
        raise JoinError(f"--address: {exc}") from None
    config_path, data_dir = args.config.expanduser().absolute(), args.data_dir.expanduser().absolute()
    if config_path.exists() and not args.force and not packaged_and_unchanged(config_path):
        raise JoinError(f"{config_path} exists: this host has a config already; pass --force to replace it")
    for path in (config_path.parent, data_dir):
        _check_writable(path)
    return JoinPlan(server, token, digest, name, config_path, data_dir, args.runtime, args.start, args.force,
                    address)


def packaged_and_unchanged(path: Path, dpkg_status: Path = DPKG_STATUS) -> bool:
    """Whether ``path`` is the deb's or rpm's example config, untouched: not the operator's, so join may replace it.

    The packages install ``/etc/nodeos/nodeos.toml`` as a config file (the all-in-one example); a host that
    joins right after the install must not need ``--force`` for a file no one wrote. Asked of the package
    managers' own records: dpkg's conffile checksum, or ``rpm -V`` (which lists a changed file).
    """
    try:
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        status = dpkg_status.read_text(errors="replace") if dpkg_status.exists() else ""
    except OSError:
        return False
    if re.search(rf"^ {re.escape(str(path))} {digest}(?: |$)", status, re.MULTILINE):
        return True
    if shutil.which("rpm") is None:
        return False
    owner = subprocess.run(["rpm", "-qf", str(path)], capture_output=True, text=True, check=False)
    if owner.returncode != 0:
        return False
    verify = subprocess.run(["rpm", "-Vf", str(path)], capture_output=True, text=True, check=False)
    return not any(line.split()[-1] == str(path) and "5" in line.split()[0] for line in verify.stdout.splitlines()
                   if line.split())


def _check_writable(path: Path) -> None:
    """The nearest existing ancestor must let us create what is missing: found out before the token is spent."""
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise JoinError(f"{path}: cannot write there (run as root, or choose --config/--data-dir)")


# -- 1 and 2: discovery and the join ----------------------------------------------------------------------

async def _join(plan: JoinPlan, progress: Progress) -> dict[str, Any]:
    progress.update(f"reading the cluster's CA from {plan.server} (cluster-info)")
    ca_pem = await discover(plan.server, plan.ca_hash)
    progress.update(f"CA {plan.ca_hash[:19]}… matches; asking for a node certificate as {plan.name}")
    key, csr = await trio.to_thread.run_sync(make_csr, plan.name)
    serving_key, serving_csr = await trio.to_thread.run_sync(make_csr, plan.name, plan.address)
    answer = await request_join(plan.server, ca_pem, plan.token, plan.name, csr, serving_csr)
    answer["_key"] = key
    answer["_serving_key"] = serving_key
    answer["_ca"] = ca_pem
    return answer


async def discover(server: str, expected: str) -> bytes:
    """The CA of cluster-info, if its hash is ``expected``; read without trusting the server (yet)."""
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    async with httpx.AsyncClient(verify=insecure, timeout=TIMEOUT) as client:
        response = await _send(client, "GET", server + INFO_PATH)
    if response.status_code != 200:
        raise JoinError(f"{server}: cannot read {NAMESPACE}/{CLUSTER_INFO}: {_status_message(response)}")
    try:
        ca_pem, _ = ca_from_kubeconfig(str(response.json()["data"]["kubeconfig"]))
        actual = ca_hash(ca_pem)
    except (ValueError, KeyError, TypeError):
        raise JoinError(f"{server}: {NAMESPACE}/{CLUSTER_INFO} holds no usable CA certificate") from None
    if actual != expected:
        raise JoinError(f"the cluster CA's hash is {actual}, not the --ca-hash given: refusing to trust "
                        f"{server} (a wrong hash, another cluster, or someone in between)")
    return ca_pem


def make_csr(name: str, address: str | None = None) -> tuple[bytes, str]:
    """A new key (PEM) and a CSR for the node; the server sets the subject anyway. With ``address``: the
    agent port's serving CSR, naming the node and that address (the server signs the address it lists)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{name}"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes")])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if address is not None:
        sans = [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


async def request_join(server: str, ca_pem: bytes, token: str, name: str, csr: str,
                       serving_csr: str) -> dict[str, Any]:
    """POST the join over TLS verified against ``ca_pem`` alone."""
    pinned = ssl.create_default_context(cadata=ca_pem.decode())
    async with httpx.AsyncClient(verify=pinned, timeout=TIMEOUT) as client:
        body = {"nodeName": name, "csr": csr, "servingCsr": serving_csr}
        response = await _send(client, "POST", server + JOIN_PATH, json=body,
                               headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        raise JoinError(f"{server} refused the token (unknown, expired or already used): "
                        f"{_status_message(response)}")
    if response.status_code != 200:
        raise JoinError(f"{server} refused the join: {_status_message(response)}")
    try:
        answer = response.json()
        x509.load_pem_x509_certificate(answer["certificate"].encode())
        x509.load_pem_x509_certificate(answer["servingCertificate"].encode())
        if not isinstance(answer.get("servers"), list) or not isinstance(answer.get("cluster"), dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise JoinError(f"{server}: the join's answer is not what nodeos join expects (another version?)") from None
    return answer


async def _send(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    server = url.split("/api/")[0].split("/nodeos/")[0]
    try:
        return await client.request(method, url, **kwargs)
    except httpx.ConnectError as exc:
        if _innermost(exc, ssl.SSLCertVerificationError) is not None:
            raise JoinError(f"{server}: its certificate does not verify with the pinned CA for that address "
                            f"({_reason(exc)}); use an address or name the master's certificate lists") from None
        raise JoinError(f"cannot reach {server}: {_reason(exc)}") from None
    except httpx.HTTPError as exc:
        raise JoinError(f"{url}: {_reason(exc)}") from None


def _innermost(exc: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first exception of ``kind`` in ``exc``'s chain of causes."""
    while exc is not None:
        if isinstance(exc, kind):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _reason(exc: BaseException) -> str:
    """The innermost cause, said plainly: "Connection refused", not "all attempts ... failed (1 sub-exception)"."""
    while True:
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        elif exc.__cause__ is not None or exc.__context__ is not None:
            exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        else:
            break
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return text.split("] ", 1)[-1] if text.startswith("[") else text


def _status_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('message') or body.get('reason')} (HTTP {response.status_code})"
    except ValueError:
        return f"HTTP {response.status_code}"


# -- 3: the files -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    config_path: Path
    ca: Path
    cert: Path
    key: Path
    servers: tuple[str, ...]


def worker_config(plan: JoinPlan, answer: dict[str, Any], servers: list[str]) -> str:
    """The worker's TOML, validated by the config schema itself before it is written."""
    cluster = answer["cluster"]
    data: dict[str, Any] = {
        "node": {"name": plan.name, "role": "worker", "data_dir": str(plan.data_dir)},
        "api": {"servers": servers, "ca_file": str(plan.pki / "ca.crt"), "cert_file": str(plan.pki / "node.crt"),
                "key_file": str(plan.pki / "node.key")},
        "cluster": {"service_cidr": str(cluster["service_cidr"]), "pod_cidr": str(cluster["pod_cidr"]),
                    "node_cidr_size": int(cluster["node_cidr_size"])},
        "dns": {"domain": str(cluster["dns_domain"])},
    }
    data["agent"] = {"address": plan.address, "cert_file": str(plan.pki / "agent.crt"),
                     "key_file": str(plan.pki / "agent.key")}
    if plan.runtime:
        data["agent"]["runtime"] = plan.runtime
    try:
        config = build(data, "the join's answer")
    except ConfigError as exc:
        raise JoinError(str(exc)) from None
    return (f"# Written by `nodeos join` for node {plan.name}; the credentials are in {plan.pki}.\n"
            "# Edit freely: nodeos join replaces this file only with --force.\n\n" + dump(config))


def write_files(plan: JoinPlan, answer: dict[str, Any]) -> Written:
    servers = list(dict.fromkeys([plan.server, *(str(s).rstrip("/") for s in answer["servers"])]))
    text = worker_config(plan, answer, servers)
    try:
        plan.pki.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(plan.data_dir, 0o700)
        ca, cert, key = plan.pki / "ca.crt", plan.pki / "node.crt", plan.pki / "node.key"
        _write(ca, answer["_ca"], 0o644)
        _write(cert, answer["certificate"].encode(), 0o644)
        _write(key, answer["_key"], 0o600)
        _write(plan.pki / "agent.crt", answer["servingCertificate"].encode(), 0o644)
        _write(plan.pki / "agent.key", answer["_serving_key"], 0o600)
        (plan.data_dir / "agent-token").unlink(missing_ok=True)  # an earlier join's shared secret: not used now
        plan.config_path.parent.mkdir(parents=True, exist_ok=True)
        _write(plan.config_path, text.encode(), 0o644)
    except OSError as exc:
        raise JoinError(f"{exc.filename}: cannot write: {exc.strerror}") from None
    return Written(plan.config_path, ca, cert, key, tuple(servers))


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with ``mode`` from the start: a key is never readable by others, not even briefly."""
    tmp = path.with_name(f".{path.name}.join")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


# -- 4: start ---------------------------------------------------------------------------------------------

def systemd_runs_nodeos() -> bool:
    """systemd is PID 1 (sd_booted's test) and knows nodeos.service (the package installed it)."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return False
    found = subprocess.run(["systemctl", "cat", UNIT], capture_output=True, check=False)
    return found.returncode == 0


def start(plan: JoinPlan, written: Written) -> int:
    if systemd_runs_nodeos():
        if plan.config_path != DEFAULT_CONFIG:
            print(f"note: {UNIT} reads {DEFAULT_CONFIG}, not {plan.config_path}", file=sys.stderr)
        restarted = subprocess.run(["systemctl", "restart", UNIT], capture_output=True, text=True, check=False)
        if restarted.returncode != 0:
            raise JoinError(f"systemctl restart {UNIT}: {restarted.stderr.strip() or restarted.returncode}")
        with Progress() as progress:
            trio.run(wait_ready, plan, written, progress)
        return 0
    print(f"starting: nodeos daemon --config {plan.config_path} (in the foreground; under systemd it would be "
          f"a service)", flush=True)
    argv = [sys.executable, "-m", "nodeos", "daemon", "--config", str(plan.config_path)]
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os.execv(sys.executable, argv)
    return 1  # not reached


async def wait_ready(plan: JoinPlan, written: Written, progress: Progress) -> None:
    """Until the Node is Ready in the master's API, asked with the node's own credential."""
    from nodeos.client import ApiClient, Connection
    from nodeos.client.api import ApiUnavailable
    from nodeos.errors import ApiError

    connection = Connection(server=written.servers[0], verify=str(written.ca),
                            cert=(str(written.cert), str(written.key)))
    path = f"/api/v1/nodes/{plan.name}"
    with trio.move_on_after(READY_TIMEOUT) as timeout:
        async with ApiClient(connection, servers=written.servers, user_agent="nodeos-join") as api:
            while True:
                try:
                    node = (await api.request("GET", path)).json()
                    conditions = (node.get("status") or {}).get("conditions") or []
                    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
                    if ready and ready.get("status") == "True":
                        progress.done(f"node {plan.name} is Ready")
                        return
                    progress.update(f"waiting for node {plan.name} to be Ready"
                                    + (f" ({ready.get('reason')})" if ready and ready.get("reason") else ""))
                except (ApiError, ApiUnavailable):
                    progress.update(f"waiting for node {plan.name} to register")
                await trio.sleep(1)
    if timeout.cancelled_caught:
        raise JoinError(f"node {plan.name} is not Ready after {READY_TIMEOUT:.0f}s: see journalctl -u nodeos")
