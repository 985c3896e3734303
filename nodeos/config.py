"""The node's TOML configuration, as typed, validated, frozen dataclasses.

A config file looks like this (every key has a default, so an empty file is
a valid master node):

    [node]
    name = "m1"                        # default: the host name, lower-cased
    role = "master"                    # "master", "worker" or "all"
    data_dir = "/var/lib/nodeos"
    disable = []                       # components not to run: "scheduler", "controller-manager", "agent"
    stop_timeout_seconds = 30          # SIGTERM's drain bound; past it the daemon exits 1 (SIGHUP reloads it)
    [api]
    listen = "127.0.0.1:6443"          # secure port; loopback only unless tls = true
    tls = false                        # serve listen over TLS with authentication (tokens, client certs)
    policy_file = "/etc/nodeos/policy.toml"  # who may do what on the TLS port; default <data_dir>/policy.toml
    audit_log = "audit.log"            # one JSON line per mutating request; relative: under data_dir; "" = off
    audit_log_max_mb = 100             # the audit log rotates past this size (audit.log.1, .2, ...)
    audit_log_keep = 3                 # rotated audit logs kept
    insecure_listen = "127.0.0.1:8080" # plain HTTP without auth; absent = disabled
    server = "http://10.0.0.1:8080"    # a worker's master; it (or servers) is required for role "worker"
    servers = ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]  # or several: a worker fails over between them
    ca_file = "/var/lib/nodeos/pki/ca.crt"     # a worker's CA for https servers (default: the system's CAs)
    cert_file = "/var/lib/nodeos/pki/node.crt" # its client certificate and key (nodeos join writes all three);
    key_file = "/var/lib/nodeos/pki/node.key"  # read at start: a missing or unreadable file is one line
    [store]
    backend = "sqlite"                 # or "etcd": the objects in an etcd cluster, for several masters
    etcd_endpoints = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]  # required for "etcd"; tried in turn
    etcd_prefix = "/nodeos"            # every key under it: clusters can share one etcd
    etcd_ca_file = "/etc/nodeos/pki/ca.crt"        # for https endpoints; default: the system's CAs
    etcd_cert_file = "/etc/nodeos/pki/etcd-client.crt"  # a client certificate, with etcd_key_file
    etcd_key_file = "/etc/nodeos/pki/etcd-client.key"
    [cluster]
    service_cidr = "10.96.0.0/16"
    pod_cidr = "10.244.0.0/16"
    node_cidr_size = 24                # each node's share of pod_cidr
    [controllers]
    node_grace_seconds = 40            # a silent node becomes Ready=Unknown after this
    eviction_seconds = 300             # and its pods are evicted this long after that
    [agent]
    runtime = "podman"                 # or "simulated": a simulator that runs nothing
    capacity = { cpu = "4" }           # overrides what the host has (a simulated node: cpu 4, 8Gi, 110 pods)
    reserved = { cpu = "100m", memory = "256Mi" }  # kept for the system: allocatable = capacity - reserved
    heartbeat_seconds = 10
    address = "10.0.0.2"               # the node's InternalIP; default: the address of the default route
    port = 10250                       # the agent's port for logs and exec, which the API server forwards to
    cert_file = "/var/lib/nodeos/pki/agent.crt"  # its serving certificate (CN system:node:<name>) and key on a
    key_file = "/var/lib/nodeos/pki/agent.key"   # TLS cluster: HTTPS, API server's client certificate required
    [podman]
    socket = "/run/nodeos/podman.sock" # the libpod API socket
    manage = true                      # start `podman system service` on it when nothing answers
    containers_conf = ""               # CONTAINERS_CONF for the managed service ("" = Podman's own)
    [etcd]
    managed = false                    # a master runs etcd itself (`nodeos etcd init|join` first)
    client_listen = "127.0.0.1:2379"   # etcd's client URL; off loopback only with client_tls
    peer_listen = "127.0.0.1:2380"     # etcd's peer URL, always TLS from the cluster CA
    advertise_address = "10.0.0.1"     # the address other members reach; default: peer_listen's host
    client_tls = false                 # serve clients over TLS with client certificates too
    [network]                          # the overlay between nodes (worker and all roles)
    backend = "vxlan"                  # or "none": no overlay (one node, or routes made by the operator)
    vni = 1                            # the VXLAN network identifier, the same on every node
    port = 8472                        # the VXLAN UDP port (Linux' and flannel's default)
    mtu = 0                            # the pods' MTU; 0: the underlay interface's MTU minus 50
    [proxy]
    mode = "nftables"                  # or "userspace": a trio TCP/UDP proxy per Service port
    [dns]
    domain = "cluster.local"           # <service>.<namespace>.svc.<domain>
    upstream = []                      # resolvers for other names; default: the host's /etc/resolv.conf

Why a table of keys rather than hand-written parsing: every key is read,
type-checked, defaulted and reported the same way, and an error always names
the file, the section and the key on one line, because that line is all an
operator sees in ``journalctl``. Adding a section is a dataclass plus one
entry in ``_SECTIONS``; a check that spans keys of a section goes in
``_CHECKS``, one that spans sections in ``_CONFIG_CHECKS``. The parser of
each kind of value is in ``nodeos._config_values``.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from nodeos import _config_values as values
from nodeos._config_values import DEFAULT_RESERVED, ROLES, RUNTIMES, Address
from nodeos.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 (pyproject pulls in tomli there)
    import tomli as tomllib

__all__ = [
    "ROLES",
    "RUNTIMES",
    "Address",
    "AgentConfig",
    "ApiConfig",
    "ClusterConfig",
    "Config",
    "ControllersConfig",
    "DnsConfig",
    "EtcdConfig",
    "NetworkConfig",
    "NodeConfig",
    "PodmanConfig",
    "ProxyConfig",
    "StoreConfig",
    "build",
    "default_config",
    "dump",
    "load",
    "parse",
]


@dataclass(frozen=True)
class NodeConfig:
    name: str
    role: str
    data_dir: Path
    disable: tuple[str, ...] = ()  # components of the role not to run, as k3s' --disable-*
    stop_timeout_seconds: int = 30  # SIGTERM's drain bound: past it the daemon cancels everything and exits 1


@dataclass(frozen=True)
class ApiConfig:
    listen: Address
    insecure_listen: Address | None
    server: str | None = None  # the master's API URL, for a worker's components
    # Several masters' URLs, in order of preference: a worker sticks to one and fails over to the next.
    # ``server`` alone stands for ``servers = [server]``; given both, ``server`` must be one of them.
    servers: tuple[str, ...] = ()
    # TLS from the cluster CA and authentication on ``listen`` (nodeos.api.tls, nodeos.api.auth).
    tls: bool = False
    # The authorization policy's bindings (nodeos.api.authz); None: ``<data_dir>/policy.toml``.
    policy_file: Path | None = None
    # The audit log (nodeos.api.audit): a relative path is under data_dir; None: no audit log.
    audit_log: Path | None = Path("audit.log")
    audit_log_max_mb: int = 100
    audit_log_keep: int = 3
    # A worker's credentials for https ``servers`` (written by ``nodeos join``): the CA to verify them with
    # (default: the system's CAs) and a client certificate with its key (CN system:node:<name>).
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.servers and self.server:
            object.__setattr__(self, "servers", (self.server,))


@dataclass(frozen=True)
class StoreConfig:
    backend: str
    etcd_endpoints: tuple[str, ...] = ()  # client URLs, for backend "etcd"
    etcd_prefix: str = "/nodeos"
    etcd_ca_file: Path | None = None  # None: the system's CAs verify https endpoints
    etcd_cert_file: Path | None = None  # a client certificate (etcd's --client-cert-auth), with etcd_key_file
    etcd_key_file: Path | None = None


@dataclass(frozen=True)
class ClusterConfig:
    service_cidr: ipaddress.IPv4Network
    pod_cidr: ipaddress.IPv4Network
    node_cidr_size: int = 24  # the prefix length of each node's podCIDR


@dataclass(frozen=True)
class ControllersConfig:
    node_grace_seconds: int = 40  # Kubernetes' node-monitor-grace-period
    eviction_seconds: int = 300   # Kubernetes' default tolerationSeconds for unreachable nodes


@dataclass(frozen=True)
class AgentConfig:
    runtime: str = "podman"
    # Resource name -> quantity as written (pods as an integer), over what the host has (or, for a
    # simulated node, over DEFAULT_CAPACITY).
    capacity: Mapping[str, str | int] = field(default_factory=dict)
    heartbeat_seconds: int = 10
    reserved: Mapping[str, str | int] = field(default_factory=lambda: dict(DEFAULT_RESERVED))
    address: str | None = None  # the InternalIP; None: the host's default-route address
    port: int = 10250
    # The agent port's serving certificate and key (``nodeos join`` writes them; nodeos.agent.tls): with them the
    # port speaks HTTPS and answers the API server's client certificate only. None: a TLS master issues its own.
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True)
class PodmanConfig:
    socket: Path = Path("/run/nodeos/podman.sock")
    manage: bool = True
    containers_conf: Path | None = None  # None: Podman's own search for containers.conf


@dataclass(frozen=True)
class EtcdConfig:
    """The managed etcd member (nodeos.etcd): off unless ``managed``; peers always speak TLS."""

    managed: bool = False
    client_listen: Address = field(default_factory=lambda: Address("127.0.0.1", 2379))
    peer_listen: Address = field(default_factory=lambda: Address("127.0.0.1", 2380))
    advertise_address: str | None = None  # None: peer_listen's host, which must then not be a wildcard
    client_tls: bool = False


@dataclass(frozen=True)
class NetworkConfig:
    """The VXLAN overlay (nodeos.network.overlay): flannel's vxlan backend, without kernel learning."""

    backend: str = "vxlan"
    vni: int = 1
    port: int = 8472
    mtu: int = 0  # 0: the underlay interface's MTU minus VXLAN's 50 bytes


@dataclass(frozen=True)
class ProxyConfig:
    mode: str = "nftables"  # or "userspace"


@dataclass(frozen=True)
class DnsConfig:
    domain: str = "cluster.local"
    upstream: tuple[str, ...] = ()  # () : the host's /etc/resolv.conf nameservers


@dataclass(frozen=True)
class Config:
    node: NodeConfig
    api: ApiConfig
    store: StoreConfig
    cluster: ClusterConfig
    controllers: ControllersConfig = field(default_factory=ControllersConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    podman: PodmanConfig = field(default_factory=PodmanConfig)
    etcd: EtcdConfig = field(default_factory=EtcdConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    source: Path | None = None  # the file it was loaded from; None when built in code


# --- the declarative schema ---

@dataclass(frozen=True)
class _Key:
    """One key of a section: its TOML type, its parser and its default.

    ``default`` is a TOML value (parsed like one read from a file, so defaults
    are validated too), a function giving one, or None for an optional key.
    """

    name: str
    parse: Callable[[Any], Any]
    default: Any
    type: type = str


def _host_name() -> str:
    return socket.gethostname().lower()


_SECTIONS: dict[str, tuple[type, tuple[_Key, ...]]] = {
    "node": (NodeConfig, (
        _Key("name", values.node_name, _host_name),
        _Key("role", values.role, "master"),
        _Key("data_dir", values.data_dir, "/var/lib/nodeos"),
        _Key("disable", values.disable, lambda: [], list),
        _Key("stop_timeout_seconds", values.positive, 30, int),
    )),
    "api": (ApiConfig, (
        _Key("listen", values.address, "127.0.0.1:6443"),
        _Key("insecure_listen", values.address, None),
        _Key("server", values.server_url, None),
        _Key("servers", values.server_urls, lambda: [], list),
        _Key("tls", bool, False, bool),
        _Key("policy_file", values.optional_path, ""),
        _Key("audit_log", values.log_file, "audit.log"),
        _Key("audit_log_max_mb", values.megabytes, 100, int),
        _Key("audit_log_keep", values.count, 3, int),
        _Key("ca_file", values.optional_path, ""),
        _Key("cert_file", values.optional_path, ""),
        _Key("key_file", values.optional_path, ""),
    )),
    "store": (StoreConfig, (
        _Key("backend", values.backend, "sqlite"),
        _Key("etcd_endpoints", values.etcd_endpoints, lambda: [], list),
        _Key("etcd_prefix", values.etcd_prefix, "/nodeos"),
        _Key("etcd_ca_file", values.optional_path, ""),
        _Key("etcd_cert_file", values.optional_path, ""),
        _Key("etcd_key_file", values.optional_path, ""),
    )),
    "cluster": (ClusterConfig, (
        _Key("service_cidr", values.service_cidr, "10.96.0.0/16"),
        _Key("pod_cidr", values.ipv4_network, "10.244.0.0/16"),
        _Key("node_cidr_size", values.node_cidr_size, 24, int),
    )),
    "controllers": (ControllersConfig, (
        _Key("node_grace_seconds", values.positive, 40, int),
        _Key("eviction_seconds", values.positive, 300, int),
    )),
    "agent": (AgentConfig, (
        _Key("runtime", values.runtime, "podman"),
        _Key("capacity", values.capacity, lambda: {}, dict),
        _Key("heartbeat_seconds", values.positive, 10, int),
        _Key("reserved", values.capacity, lambda: dict(DEFAULT_RESERVED), dict),
        _Key("address", values.host_ip, None),
        _Key("port", values.port, 10250, int),
        _Key("cert_file", values.optional_path, ""),
        _Key("key_file", values.optional_path, ""),
    )),
    "podman": (PodmanConfig, (
        _Key("socket", values.absolute_path, "/run/nodeos/podman.sock"),
        _Key("manage", bool, True, bool),
        _Key("containers_conf", values.optional_path, ""),
    )),
    "etcd": (EtcdConfig, (
        _Key("managed", bool, False, bool),
        _Key("client_listen", values.address, "127.0.0.1:2379"),
        _Key("peer_listen", values.address, "127.0.0.1:2380"),
        _Key("advertise_address", values.host_ip, None),
        _Key("client_tls", bool, False, bool),
    )),
    "network": (NetworkConfig, (
        _Key("backend", values.overlay_backend, "vxlan"),
        _Key("vni", values.vni, 1, int),
        _Key("port", values.port, 8472, int),
        _Key("mtu", values.mtu, 0, int),
    )),
    "proxy": (ProxyConfig, (
        _Key("mode", values.proxy_mode, "nftables"),
    )),
    "dns": (DnsConfig, (
        _Key("domain", values.dns_domain, "cluster.local"),
        _Key("upstream", values.nameservers, lambda: [], list),
    )),
}


def _check_cluster(cluster: ClusterConfig) -> tuple[str, str] | None:
    if cluster.service_cidr.overlaps(cluster.pod_cidr):
        # A service IP that is also a pod IP would route to the wrong place.
        return "pod_cidr", f'"{cluster.pod_cidr}" overlaps service_cidr "{cluster.service_cidr}"'
    if cluster.node_cidr_size < cluster.pod_cidr.prefixlen:
        return "node_cidr_size", (f"{cluster.node_cidr_size} is larger than pod_cidr \"{cluster.pod_cidr}\" "
                                  f"itself: use a prefix of at least {cluster.pod_cidr.prefixlen}")
    return None


def _check_etcd(etcd: EtcdConfig) -> tuple[str, str] | None:
    if not etcd.client_listen.is_loopback and not etcd.client_tls:
        # etcd has no other authentication: whoever reaches a plain client port owns every object.
        return "client_listen", f'"{etcd.client_listen}" is not loopback: set client_tls = true to serve it'
    if etcd.advertise_address is None and etcd.peer_listen.host in ("0.0.0.0", "::"):
        return "advertise_address", (f'required when peer_listen "{etcd.peer_listen}" is a wildcard: '
                                     "the address the other members reach this one at")
    return None


def _check_store(store: StoreConfig) -> tuple[str, str] | None:
    if store.backend == "etcd" and not store.etcd_endpoints:
        return "etcd_endpoints", ('required when backend = "etcd": the client URLs of the etcd members, '
                                  'e.g. ["http://127.0.0.1:2379"]')
    if (store.etcd_cert_file is None) != (store.etcd_key_file is None):
        given, missing = (("etcd_cert_file", "etcd_key_file") if store.etcd_key_file is None
                          else ("etcd_key_file", "etcd_cert_file"))
        return missing, f"required with {given}: a client certificate and its key go together"
    tls_files = store.etcd_ca_file or store.etcd_cert_file
    if tls_files and store.etcd_endpoints and not any(e.startswith("https:") for e in store.etcd_endpoints):
        # Files that would silently go unused: the operator surely meant https.
        key = "etcd_ca_file" if store.etcd_ca_file else "etcd_cert_file"
        return key, "set, but no etcd_endpoints is https: use https URLs for TLS"
    return None


def _check_api(api: ApiConfig) -> tuple[str, str] | None:
    if api.insecure_listen is not None and not api.insecure_listen.is_loopback:
        # Its caller is an administrator without a credential: only this host may be that.
        return "insecure_listen", (f'"{api.insecure_listen}" must be a loopback address: the insecure port '
                                   "answers anyone as administrator (use tls = true on listen for others)")
    if not api.tls and not api.listen.is_loopback:
        # Without TLS and authentication, anyone who can reach the port owns the cluster.
        return "listen", f'"{api.listen}" must be a loopback address until TLS is enabled'
    if (api.cert_file is None) != (api.key_file is None):
        given, missing = ("cert_file", "key_file") if api.key_file is None else ("key_file", "cert_file")
        return missing, f"required with {given}: a client certificate and its key go together"
    if api.server and api.server not in api.servers:
        # Two lists of masters that disagree: which one the operator meant cannot be guessed.
        return "server", (f"{values.quote(api.server)} is not one of servers; give servers alone "
                          "(or list server among them)")
    return None


def _check_agent(agent: AgentConfig) -> tuple[str, str] | None:
    if (agent.cert_file is None) != (agent.key_file is None):
        given, missing = ("cert_file", "key_file") if agent.key_file is None else ("key_file", "cert_file")
        return missing, f"required with {given}: the agent's serving certificate and its key go together"
    return None


# Checks that span keys of one section: each returns (key, message) for a problem, else None.
_CHECKS: dict[str, Callable[[Any], tuple[str, str] | None]] = {
    "agent": _check_agent,
    "api": _check_api,
    "cluster": _check_cluster,
    "etcd": _check_etcd,
    "store": _check_store,
}

def _check_worker_server(config: Config) -> tuple[str, str] | None:
    if config.node.role == "worker" and not config.api.servers:
        # A worker runs no API of its own: without the master's URL it could reach no one.
        return "[api] server", ('required for role "worker" (or servers, a list): the URL of the master\'s API, '
                                'e.g. "http://10.0.0.1:8080"')
    return None


# Checks across sections: each returns (where, message) for a problem, else None.
_CONFIG_CHECKS: tuple[Callable[[Config], tuple[str, str] | None], ...] = (_check_worker_server,)

_TOML_TYPES = {str: "string", bool: "boolean", int: "integer", float: "float", list: "array",
               dict: "table", datetime: "datetime", date: "date", time: "time"}


def _type_name(value: object) -> str:
    return next((name for t, name in _TOML_TYPES.items() if isinstance(value, t)), type(value).__name__)


# --- building a Config ---

class _Problem(Exception):
    """A bad key, before the file name is known to the message."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")


def _build_section(name: str, table: dict[str, Any]) -> Any:
    cls, keys = _SECTIONS[name]
    known = [key.name for key in keys]
    unknown = sorted(table.keys() - set(known))
    if unknown:
        raise _Problem(f"[{name}] {unknown[0]}", f"unknown key (known: {', '.join(known)})")
    values = {}
    for key in keys:
        raw = table.get(key.name, key.default() if callable(key.default) else key.default)
        values[key.name] = None if raw is None else _parse_value(name, key, raw)
    section = cls(**values)
    check = _CHECKS.get(name)
    problem = check(section) if check else None
    if problem:
        raise _Problem(f"[{name}] {problem[0]}", problem[1])
    return section


def _parse_value(section: str, key: _Key, raw: object) -> Any:
    where = f"[{section}] {key.name}"
    if type(raw) is not key.type:
        wanted = _TOML_TYPES[key.type]
        article = "an" if wanted[0] in "aeiou" else "a"
        raise _Problem(where, f"expected {article} {wanted}, got {_type_name(raw)} {values.quote(raw)}")
    try:
        return key.parse(raw)
    except ValueError as exc:
        raise _Problem(where, str(exc)) from None


def build(data: dict[str, Any], source: str) -> Config:
    """A Config from TOML data already in dicts (say, from command-line flags).

    ``source`` names where the data came from in error messages.
    """
    try:
        return _build(data)
    except _Problem as exc:
        raise ConfigError(f"{source}: {_one_line(str(exc))}") from None


def _build(data: dict[str, Any], given: dict[str, Any] | None = None) -> Config:
    """A Config from parsed TOML; ``given`` holds ready-made sections to use as they are."""
    for name, table in data.items():
        if name not in _SECTIONS:
            raise _Problem(f"[{name}]", f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(table, dict):
            raise _Problem(name, f"expected a table [{name}], got {_type_name(table)} {values.quote(table)}")
    given = given or {}
    sections = {name: given.get(name) or _build_section(name, data.get(name, {})) for name in _SECTIONS}
    config = Config(**sections)
    for check in _CONFIG_CHECKS:
        problem = check(config)
        if problem:
            raise _Problem(*problem)
    return config


def parse(text: str, source: str) -> Config:
    """Parse and validate TOML text; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {_one_line(str(exc))}") from None
    return build(data, source)


def load(path: Path) -> Config:
    """Read, parse and validate a config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{path}: cannot read: {reason}") from None
    return replace(parse(text, str(path)), source=Path(path))


def default_config(**overrides: Any) -> Config:
    """The config of an empty file, with sections overridden by keyword.

    A section is given either as a dict of TOML values, validated like a file
    (``node={"role": "all", "data_dir": tmp_path}``; None leaves a key unset,
    paths, addresses and networks are taken as their text), or as a ready
    section dataclass used as is (``api=ApiConfig(...)``).
    """
    data: dict[str, Any] = {}
    given: dict[str, Any] = {}
    for name, value in overrides.items():
        if isinstance(value, dict):
            data[name] = {k: _as_toml(v) for k, v in value.items() if v is not None}
        elif name in _SECTIONS and isinstance(value, _SECTIONS[name][0]):
            given[name] = value
        else:
            raise TypeError(f"default_config({name}=...) takes a dict or a {name} section dataclass")
    try:
        return _build(data, given)
    except _Problem as exc:
        raise ConfigError(f"<defaults>: {_one_line(str(exc))}") from None


def _as_toml(value: Any) -> Any:
    return str(value) if isinstance(value, (Path, Address, ipaddress.IPv4Network)) else value


def dump(config: Config) -> str:
    """The config as TOML text that ``parse`` reads back to an equal Config."""
    lines: list[str] = []
    for name in _SECTIONS:
        section = getattr(config, name)
        lines.append(f"[{name}]")
        # None is an absent key, except where absent means something else: then it is "" (audit_log).
        off = {key.name for key in _SECTIONS[name][1] if key.default not in (None, "")}
        for key in fields(section):
            value = getattr(section, key.name)
            if value is not None:
                lines.append(f"{key.name} = {_toml_value(value)}")
            elif key.name in off:
                lines.append(f'{key.name} = ""')
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    """A value as TOML: integers and booleans stay so, tables are inline, the rest is a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _one_line(message: str) -> str:
    return " ".join(message.split())
