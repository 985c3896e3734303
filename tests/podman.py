"""Real Podman for tests: a libpod API service on a socket of the test's own, and a test image.

These machines cannot pull images, so the test image is built here: the
static busybox from Debian's ``busybox-static``, its applets linked, turned
into an image with ``podman import``. It has ``sh``, ``sleep``, ``httpd``,
``nc``, ``wget``… enough for crash loops, probes, logs and exec.

Podman runs with ``config/containers.conf`` (runc, explicit ulimits), which
these VMs need; ``CONTAINERS_CONF`` can point elsewhere on a host that needs
something else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = os.environ.get("CONTAINERS_CONF") or str(ROOT / "config" / "containers.conf")
TEST_IMAGE = "localhost/nodeos-test/busybox:1"
APPLETS = ("sh", "sleep", "echo", "cat", "ls", "env", "id", "true", "false", "yes", "httpd", "nc", "wget",
           "kill", "ps", "head", "seq", "date", "hostname", "touch", "mkdir", "rm", "grep", "dd", "printf", "test")


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF}


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """The podman CLI, for test set-up and for checking what the agent did (never the agent's own path)."""
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True, check=check,
                          timeout=timeout)


def ensure_test_image(name: str = TEST_IMAGE) -> str:
    """Build the busybox test image unless it exists; return its name."""
    if podman("image", "exists", name, check=False).returncode == 0:
        return name
    busybox = shutil.which("busybox") or "/bin/busybox"
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        with tarfile.open(rootfs, "w") as tar:
            tar.add(busybox, arcname="bin/busybox")
            for applet in APPLETS:
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
            for directory in ("tmp", "etc", "var/www", "proc", "sys", "dev"):
                entry = tarfile.TarInfo(directory)
                entry.type, entry.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
                tar.addfile(entry)
        podman("import", "--change", "CMD=/bin/sh", str(rootfs), name)
    return name


class PodmanService:
    """``podman system service --time=0`` on ``socket``, for a test that wants its own."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> PodmanService:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                                     env=podman_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.socket.parent)  # conmon writes "oom" marker files in its cwd
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.socket.exists():  # (pinging a missing socket leaks one in httpx's sync transport)
                time.sleep(0.05)
                continue
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket))) as client:
                    if client.get("http://d/v4.0.0/libpod/_ping").status_code == 200:
                        return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"podman service on {self.socket} did not answer within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def remove_labelled(label: str) -> None:
    """Remove every Podman pod and container carrying ``label`` (a test's own), whatever state they are in."""
    pods = podman("pod", "ps", "-q", "--filter", f"label={label}", check=False).stdout.split()
    if pods:
        podman("pod", "rm", "-f", "-t", "0", *pods, check=False)
    containers = podman("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
    if containers:
        podman("rm", "-f", "-t", "0", *containers, check=False)


if __name__ == "__main__":  # scripts/run.sh builds the demo's image this way
    print(ensure_test_image())
