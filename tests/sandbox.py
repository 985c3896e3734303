"""Helpers for tests on ``nodeos sandbox``: the test image as an archive, and what a sandbox left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nodeos.sandbox import Host
from nodeos.sandbox.layout import tag_of
from tests.podman import ensure_test_image, podman


def run_nodeos(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real ``nodeos`` command line, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=timeout)


def image_archive(directory: Path) -> Path:
    """The busybox test image as a ``podman save`` archive, made once per directory."""
    archive = directory / "busybox.tar"
    if not archive.exists():
        directory.mkdir(parents=True, exist_ok=True)
        podman("save", "-o", str(archive), ensure_test_image())
    return archive


def host_podman(host: Host, *args: str) -> subprocess.CompletedProcess:
    """The Podman CLI on one sandbox host's storage."""
    env = {**os.environ, "CONTAINERS_CONF": str(host.containers_conf),
           "CONTAINERS_STORAGE_CONF": str(host.storage_conf)}
    return subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=60, check=True)


def remnants(directory: Path) -> list[str]:
    """Whatever of the sandbox of ``directory`` is still on the machine: namespaces, links, processes."""
    tag = tag_of(directory)
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found = [f"netns {line.split()[0]}" for line in netns.splitlines() if f"-{tag}-" in line]
    found += [f"link {line.split()[1]}" for line in links.splitlines() if f"nsb-{tag}" in line]
    marker = str(directory.resolve()) + "/"
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"process {pid}: {cmdline[:120]}")
    return found
