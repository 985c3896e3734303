"""The node config: defaults, every kind of error as one line naming file and key, formatting."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from nodeos import config
from nodeos.config import Address, ApiConfig, Config, default_config, dump, load, parse
from nodeos.errors import ConfigError

EXAMPLES = sorted((Path(__file__).parents[2] / "config").glob("*.toml"))


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, "nodeos.toml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("nodeos.toml: ")
    return message


def test_empty_file_gives_the_defaults(monkeypatch):
    monkeypatch.setattr(config.socket, "gethostname", lambda: "Node-1.Example")
    c = parse("", "nodeos.toml")
    assert c.node.name == "node-1.example"
    assert c.node.role == "master"
    assert c.node.data_dir == Path("/var/lib/nodeos")
    assert c.api == ApiConfig(listen=Address("127.0.0.1", 6443), insecure_listen=None)
    assert c.store.backend == "sqlite"
    assert c.cluster.service_cidr == ipaddress.IPv4Network("10.96.0.0/16")
    assert c.cluster.pod_cidr == ipaddress.IPv4Network("10.244.0.0/16")
    assert c.cluster.node_cidr_size == 24
    assert (c.controllers.node_grace_seconds, c.controllers.eviction_seconds) == (40, 300)
    assert c.agent.runtime == "podman"  # the simulator is never the default
    assert c.agent.capacity == {}  # the host's own (a simulated node's: DEFAULT_CAPACITY)
    assert c.agent.reserved == {"cpu": "100m", "memory": "256Mi"}
    assert (c.agent.address, c.agent.port) == (None, 10250)
    assert c.podman.socket == Path("/run/nodeos/podman.sock") and c.podman.manage
    assert c.podman.containers_conf is None
    assert c.agent.heartbeat_seconds == 10
    assert c.api.server is None
    assert c.node.disable == ()
    assert c.source is None


def test_full_file():
    c = parse(
        '[node]\nname = "m1"\nrole = "all"\ndata_dir = "/srv/nodeos"\n'
        '[api]\nlisten = "[::1]:6443"\ninsecure_listen = "127.0.0.1:8080"\n'
        '[store]\nbackend = "sqlite"\n'
        '[cluster]\nservice_cidr = "10.0.0.0/24"\npod_cidr = "10.1.0.0/16"\n',
        "nodeos.toml",
    )
    assert (c.node.name, c.node.role, c.node.data_dir) == ("m1", "all", Path("/srv/nodeos"))
    assert c.api.listen == Address("::1", 6443)
    assert c.api.insecure_listen == Address("127.0.0.1", 8080)
    assert str(c.cluster.service_cidr) == "10.0.0.0/24"


def test_store_on_etcd():
    c = parse(
        '[store]\nbackend = "etcd"\netcd_endpoints = ["https://10.0.0.1:2379/", "https://e2:2379"]\n'
        'etcd_prefix = "/prod/nodeos/"\netcd_ca_file = "/pki/ca.crt"\n'
        'etcd_cert_file = "/pki/c.crt"\netcd_key_file = "/pki/c.key"\n',
        "nodeos.toml",
    )
    assert c.store.backend == "etcd"
    assert c.store.etcd_endpoints == ("https://10.0.0.1:2379", "https://e2:2379")
    assert c.store.etcd_prefix == "/prod/nodeos"
    assert (c.store.etcd_ca_file, c.store.etcd_cert_file, c.store.etcd_key_file) == (
        Path("/pki/ca.crt"), Path("/pki/c.crt"), Path("/pki/c.key"))
    assert parse(dump(c), "dumped") == c
    defaults = parse("", "nodeos.toml").store
    assert (defaults.etcd_endpoints, defaults.etcd_prefix, defaults.etcd_ca_file) == ((), "/nodeos", None)


def test_load_records_the_source(tmp_path):
    path = tmp_path / "nodeos.toml"
    path.write_text('[node]\nname = "m1"\n')
    c = load(path)
    assert c.source == path
    assert c.node.name == "m1"


def test_config_is_frozen():
    c = default_config()
    with pytest.raises(AttributeError):
        c.node.role = "worker"  # type: ignore[misc]


@pytest.mark.parametrize(("address", "text"), [
    (Address("127.0.0.1", 6443), "127.0.0.1:6443"),
    (Address("::1", 6443), "[::1]:6443"),
    (Address("fe80::1", 80), "[fe80::1]:80"),
    (Address("localhost", 8080), "localhost:8080"),
])
def test_address_formatting(address, text):
    assert str(address) == text


def test_ipv6_address_round_trips():
    c = parse('[api]\nlisten = "[::1]:7443"\n', "nodeos.toml")
    assert c.api.listen == Address("::1", 7443)
    assert str(c.api.listen) == "[::1]:7443"


@pytest.mark.parametrize(("text", "where", "why"), [
    ('[nope]\nx = 1\n', "[nope]", "unknown section"),
    ('[api]\nlisen = "127.0.0.1:1"\n', "[api] lisen", "unknown key"),
    ('node = "m1"\n', "node", "expected a table"),
    ('[api]\nlisten = 6443\n', "[api] listen", "expected a string, got integer 6443"),
    ('[node]\nrole = true\n', "[node] role", "expected a string, got boolean true"),
    ('[node]\nrole = "boss"\n', "[node] role", '"boss" is not one of "master", "worker", "all"'),
    ('[api]\nlisten = "127.0.0.1:0"\n', "[api] listen", "out of range"),
    ('[api]\ninsecure_listen = "127.0.0.1:65536"\n', "[api] insecure_listen", "out of range"),
    ('[api]\nlisten = "127.0.0.1"\n', "[api] listen", "not host:port"),
    ('[api]\nlisten = "::1:6443"\n', "[api] listen", "brackets"),
    ('[api]\nlisten = "[nope]:6443"\n', "[api] listen", "not an IPv6 address"),
    ('[api]\ninsecure_listen = "a b:80"\n', "[api] insecure_listen", "neither an IP address nor a host name"),
    ('[api]\nlisten = "0.0.0.0:6443"\n', "[api] listen",
     '"0.0.0.0:6443" must be a loopback address until TLS is enabled'),
    ('[api]\ntls = true\nlisten = "0.0.0.0:6443"\ninsecure_listen = "0.0.0.0:8080"\n', "[api] insecure_listen",
     '"0.0.0.0:8080" must be a loopback address: the insecure port answers anyone as administrator'),
    ('[store]\nbackend = "redis"\n', "[store] backend", 'not a known store backend; use "sqlite" or "etcd"'),
    ('[store]\nbackend = "etcd"\n', "[store] etcd_endpoints", 'required when backend = "etcd"'),
    ('[store]\nbackend = "etcd"\netcd_endpoints = []\n', "[store] etcd_endpoints", "required when backend"),
    ('[store]\netcd_endpoints = "http://e1:2379"\n', "[store] etcd_endpoints", "expected an array"),
    ('[store]\netcd_endpoints = ["e1:2379"]\n', "[store] etcd_endpoints",
     '"e1:2379" is not an http(s) URL like "http://10.0.0.1:2379"'),
    ('[store]\netcd_endpoints = ["http://e1:2379", 2379]\n', "[store] etcd_endpoints", "expected URL strings"),
    ('[store]\netcd_endpoints = ["http://e1:2379", "http://e1:2379/"]\n', "[store] etcd_endpoints",
     "listed twice"),
    ('[store]\netcd_prefix = "nodeos"\n', "[store] etcd_prefix", 'not a key prefix like "/nodeos"'),
    ('[store]\netcd_prefix = "/"\n', "[store] etcd_prefix", "not a key prefix"),
    ('[store]\netcd_ca_file = "ca.crt"\n', "[store] etcd_ca_file", "absolute path"),
    ('[store]\netcd_cert_file = "/pki/c.crt"\n', "[store] etcd_key_file", "required with etcd_cert_file"),
    ('[store]\netcd_key_file = "/pki/c.key"\n', "[store] etcd_cert_file", "required with etcd_key_file"),
    ('[store]\nbackend = "etcd"\netcd_endpoints = ["http://e1:2379"]\netcd_ca_file = "/pki/ca.crt"\n',
     "[store] etcd_ca_file", "no etcd_endpoints is https"),
    ('[cluster]\nservice_cidr = "10.96.0.0/33"\n', "[cluster] service_cidr", "not an IPv4 CIDR"),
    ('[cluster]\npod_cidr = "10.244.0.1/16"\n', "[cluster] pod_cidr", "host bits set"),
    ('[cluster]\npod_cidr = "fd00::/64"\n', "[cluster] pod_cidr", "not an IPv4 CIDR"),
    ('[cluster]\npod_cidr = "10.96.128.0/17"\n', "[cluster] pod_cidr", 'overlaps service_cidr "10.96.0.0/16"'),
    ('[cluster]\nservice_cidr = "10.96.0.0/29"\n', "[cluster] service_cidr", "too small"),
    ('[node]\nname = "Bad_Name"\n', "[node] name", "not a DNS-1123 subdomain"),
    ('[node]\nname = "-m1"\n', "[node] name", "not a DNS-1123 subdomain"),
    (f'[node]\nname = "{"a" * 254}"\n', "[node] name", "not a DNS-1123 subdomain"),
    ('[node]\ndata_dir = "relative/dir"\n', "[node] data_dir", "absolute path"),
    ('[node]\ndisable = ["api"]\n', "[node] disable", '"api" is not one of "scheduler", "controller-manager", "agent"'),
    ('[node]\ndisable = "scheduler"\n', "[node] disable", "expected an array"),
    ('[api]\nserver = "10.0.0.1:8080"\n', "[api] server", "not an http(s) URL"),
    ('[api]\nserver = "ftp://m1:8080"\n', "[api] server", "not an http(s) URL"),
    ('[api]\nserver = "http://m1:8080/api"\n', "[api] server", "only scheme, host and port"),
    ('[api]\nserver = "http://m1:99999"\n', "[api] server", "not a URL"),
    ('[node]\nrole = "worker"\n', "[api] server", 'required for role "worker"'),
    ('[node]\nrole = "worker"\n[api]\nservers = []\n', "[api] server", 'required for role "worker"'),
    ('[api]\nservers = "http://m1:8080"\n', "[api] servers", "expected an array"),
    ('[api]\nservers = ["http://m1:8080", 8080]\n', "[api] servers", "expected URL strings, got 8080"),
    ('[api]\nservers = ["http://m1:8080", "m2:8080"]\n', "[api] servers", '"m2:8080" is not an http(s) URL'),
    ('[api]\nservers = ["http://m1:8080", "http://m1:8080/"]\n', "[api] servers", "listed twice"),
    ('[api]\nserver = "http://m3:8080"\nservers = ["http://m1:8080", "http://m2:8080"]\n', "[api] server",
     '"http://m3:8080" is not one of servers'),
    ('[cluster]\nnode_cidr_size = 31\n', "[cluster] node_cidr_size", "between the pod_cidr prefix and 30"),
    ('[cluster]\nnode_cidr_size = "24"\n', "[cluster] node_cidr_size", 'expected an integer, got string "24"'),
    ('[cluster]\nnode_cidr_size = 12\n', "[cluster] node_cidr_size", "use a prefix of at least 16"),
    ('[controllers]\nnode_grace_seconds = 0\n', "[controllers] node_grace_seconds", "must be a positive"),
    ('[controllers]\neviction_seconds = -1\n', "[controllers] eviction_seconds", "must be a positive"),
    ('[controllers]\ngrace = 1\n', "[controllers] grace", "unknown key"),
    ('[agent]\nruntime = "docker"\n', "[agent] runtime", '"docker" is not one of "podman", "simulated"'),
    ('[agent]\nheartbeat_seconds = 0\n', "[agent] heartbeat_seconds", "must be a positive"),
    ('[agent]\ncapacity = "4"\n', "[agent] capacity", "expected a table"),
    ('[agent]\ncapacity = { gpu = "1" }\n', "[agent] capacity", 'unknown resource "gpu"'),
    ('[agent]\ncapacity = { cpu = "lots" }\n', "[agent] capacity", 'cpu: "lots" is not a positive quantity'),
    ('[agent]\ncapacity = { memory = "-1Gi" }\n', "[agent] capacity", "not a positive quantity"),
    ('[agent]\ncapacity = { cpu = 4 }\n', "[agent] capacity", "cpu: expected a quantity string"),
    ('[agent]\ncapacity = { pods = "110" }\n', "[agent] capacity", "pods: \"110\" must be a positive integer"),
    ('[agent]\naddress = "somewhere"\n', "[agent] address", '"somewhere" is not an IP address'),
    ('[agent]\naddress = "0.0.0.0"\n', "[agent] address", "cannot be a node's address"),
    ('[agent]\nport = 70000\n', "[agent] port", "out of range"),
    ('[agent]\nreserved = { cpu = "x" }\n', "[agent] reserved", "not a positive quantity"),
    ('[podman]\nsocket = "podman.sock"\n', "[podman] socket", "must be an absolute path"),
    ('[podman]\nmanage = "yes"\n', "[podman] manage", "expected a boolean"),
    ('[podman]\ncontainers_conf = "rel.conf"\n', "[podman] containers_conf", "must be an absolute path"),
])
def test_each_error_is_one_line_naming_file_and_key(text, where, why):
    message = error_of(text)
    assert message.startswith(f"nodeos.toml: {where}: "), message
    assert why in message


def test_worker_with_server_and_simulated_agent():
    c = parse('[node]\nrole = "worker"\n[api]\nserver = "http://10.0.0.1:8080/"\n'
              '[agent]\nruntime = "simulated"\ncapacity = { cpu = "500m", pods = 20 }\nheartbeat_seconds = 2\n',
              "nodeos.toml")
    assert c.api.server == "http://10.0.0.1:8080"  # the trailing slash would double in paths
    assert c.agent.runtime == "simulated"
    assert c.agent.capacity == {"cpu": "500m", "pods": 20}  # laid over the host's (or simulated) capacity
    assert c.agent.heartbeat_seconds == 2


def test_server_alone_means_a_list_of_one():
    c = parse('[node]\nrole = "worker"\n[api]\nserver = "http://10.0.0.1:8080"\n', "nodeos.toml")
    assert c.api.servers == ("http://10.0.0.1:8080",)
    assert parse("", "nodeos.toml").api.servers == ()


def test_worker_with_several_servers_keeps_their_order():
    c = parse('[node]\nrole = "worker"\n[api]\nservers = ["http://10.0.0.2:8080/", "https://m1:6443"]\n',
              "nodeos.toml")
    assert c.api.servers == ("http://10.0.0.2:8080", "https://m1:6443")
    assert c.api.server is None
    # server beside servers is accepted when it is one of them; the list's order still decides.
    both = parse('[api]\nserver = "https://m1:6443"\nservers = ["http://10.0.0.2:8080", "https://m1:6443"]\n',
                 "nodeos.toml")
    assert both.api.servers == ("http://10.0.0.2:8080", "https://m1:6443")


def test_node_cidr_size_may_equal_the_pod_cidr_prefix():
    c = parse('[cluster]\npod_cidr = "10.244.0.0/24"\nnode_cidr_size = 24\n', "nodeos.toml")
    assert c.cluster.node_cidr_size == 24


def test_loopback_secure_addresses_are_accepted():
    for listen in ("127.0.0.1:6443", "127.0.0.2:6443", "[::1]:6443", "localhost:6443"):
        assert parse(f'[api]\nlisten = "{listen}"\n', "nodeos.toml").api.listen.is_loopback


def test_toml_syntax_error_gives_the_line():
    message = error_of('[node]\nname = "m1"\nrole = \n')
    assert "invalid TOML" in message
    assert "line 3" in message


def test_unreadable_file_names_it(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(missing))}: cannot read: No such file or directory$"):
        load(missing)
    with pytest.raises(ConfigError, match=r"cannot read: Is a directory$"):
        load(tmp_path)


def test_error_names_the_file_given(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('[node]\nrole = "boss"\n')
    with pytest.raises(ConfigError, match=rf'^{re.escape(str(path))}: \[node\] role: "boss"'):
        load(path)


def test_default_config_overrides(tmp_path):
    c = default_config(node={"role": "all", "data_dir": tmp_path, "name": "n1"},
                       api={"insecure_listen": "127.0.0.1:18080"})
    assert (c.node.role, c.node.data_dir, c.node.name) == ("all", tmp_path, "n1")
    assert c.api.insecure_listen == Address("127.0.0.1", 18080)
    api = ApiConfig(Address("127.0.0.1", 1), None)
    assert default_config(api=api).api is api


def test_default_config_validates_overrides():
    with pytest.raises(ConfigError, match=r"\[node\] role"):
        default_config(node={"role": "boss"})
    with pytest.raises(TypeError):
        default_config(node="m1")


def test_dump_round_trips():
    c = default_config(node={"name": "m1", "role": "all", "data_dir": "/srv/a b", "disable": ["scheduler"]},
                       api={"listen": "[::1]:6443", "insecure_listen": "127.0.0.1:8080",
                            "server": "http://127.0.0.1:8080",
                            "servers": ["http://127.0.0.2:8080", "http://127.0.0.1:8080"]},
                       cluster={"node_cidr_size": 26}, controllers={"node_grace_seconds": 4},
                       agent={"runtime": "simulated", "capacity": {"cpu": "2", "pods": 7}})
    assert parse(dump(c), "dumped") == c
    assert "insecure_listen" not in dump(default_config())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    assert isinstance(load(path), Config)


def test_there_are_examples_for_each_role():
    assert {p.stem for p in EXAMPLES} >= {"master", "worker", "all"}
