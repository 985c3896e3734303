"""``nodeos doctor``'s checks on made-up hosts (a directory standing for /), its ports, its exit codes."""

from __future__ import annotations

import gzip
import os
import socket
from pathlib import Path

import pytest

from nodeos.cli.main import main
from nodeos.config import default_config
from nodeos.doctor import Check, exit_code, summary
from nodeos.doctor.kernel import (
    MODULES,
    check_bridge_netfilter,
    check_cgroups,
    check_ip_forward,
    check_modules,
    module_state,
)
from nodeos.doctor.ports import Port, _check, holder, wanted_ports

RELEASE = "6.1.0-test"
VXLAN = next(m for m in MODULES if m.name == "vxlan")
BR_NETFILTER = next(m for m in MODULES if m.name == "br_netfilter")


def write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_a_module_in_proc_modules_is_loaded(tmp_path):
    write(tmp_path, "proc/modules", "vxlan 139264 0 - Live 0x0\nbridge 311296 1 br_netfilter, Live 0x0\n")
    assert module_state(VXLAN, tmp_path, RELEASE) == "loaded"


def test_built_in_modules_come_from_modules_builtin_or_the_kernel_config(tmp_path):
    write(tmp_path, "proc/modules", "")
    write(tmp_path, f"lib/modules/{RELEASE}/modules.builtin", "kernel/drivers/net/vxlan/vxlan.ko\n")
    assert module_state(VXLAN, tmp_path, RELEASE) == "built in"
    with gzip.open(tmp_path / "proc/config.gz", "wt") as f:
        f.write("CONFIG_BRIDGE_NETFILTER=y\n")
    assert module_state(BR_NETFILTER, tmp_path, RELEASE) == "built in"


def test_a_kernel_without_module_support_is_read_from_its_config(tmp_path):
    """No /proc/modules at all (CONFIG_MODULES unset), as on these VMs."""
    (tmp_path / "proc").mkdir()
    with gzip.open(tmp_path / "proc/config.gz", "wt") as f:
        f.write("CONFIG_VXLAN=y\n# CONFIG_BRIDGE_NETFILTER is not set\n")
    assert module_state(VXLAN, tmp_path, RELEASE) == "built in"
    assert module_state(BR_NETFILTER, tmp_path, RELEASE) == "missing"


def test_a_module_in_modules_dep_is_loadable(tmp_path):
    write(tmp_path, "proc/modules", "")
    write(tmp_path, f"lib/modules/{RELEASE}/modules.dep",
          "kernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\n")
    assert module_state(BR_NETFILTER, tmp_path, RELEASE) == "loadable"
    assert module_state(VXLAN, tmp_path, RELEASE) == "missing"


def test_module_checks_say_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "uname", lambda: os.uname_result(("Linux", "h", RELEASE, "", "x86_64")))
    write(tmp_path, "proc/modules", "")
    write(tmp_path, f"lib/modules/{RELEASE}/modules.dep",
          "kernel/drivers/net/vxlan/vxlan.ko.xz:\nkernel/net/bridge/br_netfilter.ko.xz:\n")
    checks = {c.name: c for c in check_modules(default_config(), tmp_path)}
    assert checks["kernel module vxlan"].status == "ok"  # loaded when the overlay makes its device
    assert checks["kernel module br_netfilter"].status == "warn"
    assert checks["kernel module br_netfilter"].fix[0] == "modprobe br_netfilter"
    assert checks["kernel module veth"].status == "fail"  # missing, and pods need it
    assert checks["kernel module overlay"].status == "warn"  # missing, but Podman has other drivers


def test_ip_forward_off_fails_with_the_sysctl_to_run(tmp_path):
    write(tmp_path, "proc/sys/net/ipv4/ip_forward", "0\n")
    check = check_ip_forward(tmp_path)
    assert check.status == "fail" and check.fix[0] == "sysctl -w net.ipv4.ip_forward=1"
    write(tmp_path, "proc/sys/net/ipv4/ip_forward", "1\n")
    assert check_ip_forward(tmp_path).status == "ok"


def test_bridge_netfilter_off_or_absent_warns(tmp_path):
    assert "not loaded" in check_bridge_netfilter(tmp_path).detail
    write(tmp_path, "proc/sys/net/bridge/bridge-nf-call-iptables", "0\n")
    check = check_bridge_netfilter(tmp_path)
    assert check.status == "warn" and "sysctl -w net.bridge.bridge-nf-call-iptables=1" in check.fix
    write(tmp_path, "proc/sys/net/bridge/bridge-nf-call-iptables", "1\n")
    assert check_bridge_netfilter(tmp_path).status == "ok"


def test_cgroup_layouts_come_from_the_process_not_sysfs(tmp_path):
    """``ip netns exec`` mounts a sysfs without cgroups: /proc/self/cgroup still tells."""
    write(tmp_path, "proc/self/cgroup", "0::/user.slice\n")
    assert check_cgroups(tmp_path).detail == "v2 (unified)"
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    assert check_cgroups(tmp_path).detail == "v2 (unified): cpuset cpu io memory pids"
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpuset io\n")
    assert check_cgroups(tmp_path).status == "warn"
    write(tmp_path, "proc/self/cgroup", "4:memory:/x\n1:cpu:/\n0::/\n")
    hybrid = check_cgroups(tmp_path)
    assert hybrid.status == "warn" and "hybrid" in hybrid.detail and "runc" in hybrid.fix[0]
    write(tmp_path, "containers.conf", '[engine]\nruntime = "runc"\n')
    runc = default_config(podman={"containers_conf": str(tmp_path / "containers.conf")})
    assert check_cgroups(tmp_path, runc).status == "ok"
    write(tmp_path, "proc/self/cgroup", "4:memory:/x\n1:cpu:/\n")
    assert check_cgroups(tmp_path).detail.startswith("v1")
    write(tmp_path, "proc/self/cgroup", "")
    assert check_cgroups(tmp_path).status == "fail"


def test_ports_follow_the_role():
    master = wanted_ports(default_config(node={"role": "master"}, api={"insecure_listen": "127.0.0.1:8080"}))
    assert [p.what for p in master] == ["[api] listen", "[api] insecure_listen"]
    node = wanted_ports(default_config(node={"role": "worker"}, api={"server": "http://10.0.0.1:8080"},
                                       agent={"address": "127.0.0.1"}))
    assert [(p.what, p.protocol, p.port) for p in node] == [("[agent] port", "tcp", 10250),
                                                            ("[network] port", "udp", 8472),
                                                            ("the cluster DNS", "udp", 53),
                                                            ("the cluster DNS", "tcp", 53)]
    simulated = wanted_ports(default_config(node={"role": "worker"}, api={"server": "http://10.0.0.1:8080"},
                                            agent={"runtime": "simulated"}))
    assert simulated == []


def test_a_port_in_use_names_its_holder():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert holder("tcp", port)[0] == os.getpid()
        check = _check(Port("[api] listen", "tcp", "127.0.0.1", port), root=True)
        assert check.status == "fail" and f"pid {os.getpid()}" in check.detail
        assert check.fix == ("stop what holds it, or change [api] listen",)
    assert _check(Port("[api] listen", "tcp", "127.0.0.1", port), root=True).status == "ok"


def test_the_dns_port_clashes_only_with_a_listener_on_every_address():
    """The cluster DNS binds the pod gateway's address: 127.0.0.53 (systemd-resolved) is no clash, 0.0.0.0 is."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as specific:
        specific.bind(("127.0.0.1", 0))
        port = specific.getsockname()[1]
        dns = Port("the cluster DNS", "udp", "0.0.0.0", port, required=False, wildcard_only=True)
        assert _check(dns, root=True).status == "ok"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as everywhere:
        everywhere.bind(("0.0.0.0", port))
        check = _check(dns, root=True)
        assert check.status == "warn" and f"pid {os.getpid()}" in check.detail


def test_an_address_not_on_the_host_fails():
    check = _check(Port("[agent] port", "tcp", "192.0.2.254", 10250), root=True)
    assert check.status == "fail" and "not an address of this host" in check.detail


def test_exit_code_is_1_only_with_a_fail():
    checks = [Check("a", "ok", ""), Check("b", "warn", "")]
    assert exit_code(checks) == 0 and summary(checks) == "1 ok, 1 warn, 0 fail"
    assert exit_code([*checks, Check("c", "fail", "")]) == 1


@pytest.mark.parametrize("text", ['[node]\nrole = "wrker"\n', "[nope]\n", "not toml ="])
def test_a_bad_config_is_one_line_and_exit_2(tmp_path, capsys, text):
    path = tmp_path / "node.toml"
    path.write_text(text)
    assert main(["doctor", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:") and err.count("\n") == 1
