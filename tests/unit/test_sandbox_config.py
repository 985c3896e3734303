"""The sandbox's pure parts: names from the directory, the state file, and each host's config files."""

from __future__ import annotations

import tomllib
from pathlib import Path

from nodeos.config import parse
from nodeos.daemon import NODE_NETWORK
from nodeos.sandbox.hostconfig import containers_conf, nodeos_config
from nodeos.sandbox.layout import Sandbox, tag_of


def test_names_derive_from_the_directory_and_fit_the_kernel(tmp_path):
    assert tag_of(tmp_path / "a") == tag_of(tmp_path / "a") != tag_of(tmp_path / "b")
    sandbox = Sandbox.plan(tmp_path / "a", 20, "172.31.7.0/24", "nftables", True)
    assert [h.name for h in sandbox.hosts[:3]] == ["master", "worker1", "worker2"]
    assert all(len(name) <= 15 for name in [sandbox.bridge, *(h.veth for h in sandbox.hosts)])  # IFNAMSIZ
    assert len({h.veth for h in sandbox.hosts}) == 21 and len({h.netns for h in sandbox.hosts}) == 21
    assert sandbox.gateway == "172.31.7.1" and [h.ip for h in sandbox.hosts[:2]] == ["172.31.7.2", "172.31.7.3"]
    assert sandbox.url == "https://172.31.7.2:6443"


def test_the_state_file_round_trips(tmp_path):
    sandbox = Sandbox.plan(tmp_path, 2, "172.31.9.0/24", "userspace", False)
    sandbox.save()
    assert Sandbox.load(tmp_path) == sandbox
    sandbox.state_file.write_text("{not json")
    assert Sandbox.load(tmp_path) is None
    assert Sandbox.load(tmp_path / "nowhere") is None


def test_host_configs_parse_with_the_node_schema(tmp_path):
    sandbox = Sandbox.plan(tmp_path, 1, "172.31.9.0/24", "userspace", True)
    master = parse(nodeos_config(sandbox, sandbox.master), "master")
    worker = parse(nodeos_config(sandbox, sandbox.host("worker1")), "worker1")
    assert (master.node.role, worker.node.role) == ("all", "worker")
    assert master.api.tls and master.api.insecure_listen is None and str(master.api.listen) == "0.0.0.0:6443"
    assert worker.api.servers == ("https://172.31.9.2:6443",)
    pki = tmp_path.resolve() / "worker1" / "data" / "pki"
    assert (worker.api.ca_file, worker.api.cert_file, worker.api.key_file) == (
        tmp_path.resolve() / "master" / "data" / "pki" / "ca.crt", pki / "node.crt", pki / "node.key")
    assert (master.agent.address, worker.agent.address) == ("172.31.9.2", "172.31.9.3")
    assert worker.podman.manage and worker.podman.socket == tmp_path.resolve() / "worker1" / "podman" / "podman.sock"
    assert worker.proxy.mode == "userspace" and worker.node.disable == ()
    quiet = Sandbox.plan(tmp_path, 1, "172.31.9.0/24", "nftables", False)
    assert parse(nodeos_config(quiet, quiet.master), "m").node.disable == NODE_NETWORK


def test_containers_conf_keeps_the_machines_settings_and_isolates_the_host(tmp_path, monkeypatch):
    base = tmp_path / "base.conf"
    base.write_text('[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n[engine]\nruntime = "runc"\n')
    monkeypatch.setenv("CONTAINERS_CONF", str(base))
    host = Sandbox.plan(tmp_path / "sb", 0, "172.31.9.0/24", "nftables", True).master
    conf = tomllib.loads(containers_conf(host))
    assert conf["containers"]["default_ulimits"] == ["nofile=1024:1024"] and conf["engine"]["runtime"] == "runc"
    assert Path(conf["engine"]["tmp_dir"]) == host.podman_tmp and conf["engine"]["lock_type"] == "file"
    assert Path(conf["network"]["network_config_dir"]) == host.dir / "networks"
