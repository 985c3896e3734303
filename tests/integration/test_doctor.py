"""``nodeos doctor`` as a user runs it, a subprocess, inside a namespace of the test's own whose forward
hook drops (Docker's FORWARD policy): the trap is a fail with the exact fix, which, run, clears it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DROP_TABLE = """
table ip filter {
  chain FORWARD { type filter hook forward priority 0; policy drop; }
}
"""
CONFIG = """
[node]
name = "n6-doctor"
role = "all"
data_dir = "{dir}"
[agent]
address = "127.0.0.1"
[podman]
socket = "{dir}/podman.sock"
"""


def sh(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, input=input, timeout=60, check=check)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"nodeos-n6-{uuid.uuid4().hex[:8]}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", name, "nft", "-f", "-", input=DROP_TABLE)
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def doctor(netns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", netns, sys.executable, "-m", "nodeos", "doctor", *args, check=False)


def config(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(CONFIG.format(dir=tmp_path))
    return path


def test_doctor_reports_the_trap_with_a_fix_that_works(netns, tmp_path):
    done = doctor(netns, "--config", str(config(tmp_path)))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    trap = next(line for line in lines if "forward path" in line)
    assert trap.startswith("FAIL") and "ip filter FORWARD" in trap and "policy drop" in trap
    fixes = [line.split("fix: ", 1)[1] for line in lines[lines.index(trap) + 1:] if "fix: nft insert" in line]
    assert len(fixes) == 4 and all(fix.startswith("nft insert rule ip filter FORWARD ip ") for fix in fixes)

    for fix in fixes:  # as an operator would paste them
        sh("ip", "netns", "exec", netns, "sh", "-c", fix)
    again = doctor(netns, "--config", str(config(tmp_path)), "--json")
    report = json.loads(again.stdout)
    forward = [c for c in report["checks"] if c["name"].startswith("forward path")]
    assert [(c["name"], c["status"]) for c in forward] == [("forward path: ip filter FORWARD", "ok")]


def test_a_clean_namespace_has_no_trap(tmp_path):
    name = f"nodeos-n6-{uuid.uuid4().hex[:8]}"
    sh("ip", "netns", "add", name)
    try:
        report = json.loads(doctor(name, "--config", str(config(tmp_path)), "--json").stdout)
    finally:
        sh("ip", "netns", "del", name, check=False)
    forward = next(c for c in report["checks"] if c["name"].startswith("forward path"))
    assert forward["status"] == "ok" and forward["detail"] == "no forward hook drops by default"


def test_the_vxlan_port_held_by_a_vxlan_device(netns, tmp_path):
    """The kernel holds a VXLAN device's port: the overlay's own is fine, another overlay's (flannel.1) is not."""
    def vxlan_check() -> dict:
        report = json.loads(doctor(netns, "--config", str(config(tmp_path)), "--json").stdout)
        return next(c for c in report["checks"] if c["name"] == "port udp 0.0.0.0:8472")

    assert vxlan_check()["status"] == "ok"
    sh("ip", "-n", netns, "link", "add", "flannel.1", "type", "vxlan", "id", "1", "dstport", "8472", "nolearning")
    sh("ip", "-n", netns, "link", "set", "flannel.1", "up")
    other = vxlan_check()
    assert other["status"] == "fail" and "flannel.1" in other["detail"]
    sh("ip", "-n", netns, "link", "del", "flannel.1")
    sh("ip", "-n", netns, "link", "add", "nodeos.1", "type", "vxlan", "id", "1", "dstport", "8472", "nolearning")
    sh("ip", "-n", netns, "link", "set", "nodeos.1", "up")
    own = vxlan_check()
    assert own["status"] == "ok" and "overlay's own" in own["detail"]


def test_doctor_in_a_namespace_sees_the_process_cgroups(netns, tmp_path):
    report = json.loads(doctor(netns, "--config", str(config(tmp_path)), "--json").stdout)
    cgroups = next(c for c in report["checks"] if c["name"] == "cgroups")
    assert cgroups["status"] != "fail", cgroups


def test_a_bad_config_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('[network]\nbackend = "flannel"\n')
    done = sh(sys.executable, "-m", "nodeos", "doctor", "--config", str(path), check=False)
    assert done.returncode == 2
    assert done.stdout == "" and done.stderr.startswith(f"error: {path}: [network] backend:")
    assert done.stderr.count("\n") == 1
