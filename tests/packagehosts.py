"""Hosts made of installed packages: a Debian tree with the deb, run in namespaces of its own.

A ``PackageHost`` is what ``nodeos sandbox`` hosts are, but built from the
package instead of this checkout: a copy of the clean Debian tree
(tests.packaging) with the deb installed by apt, and an "init" — a process
that is pid 1 of new mount, pid and network namespaces, chrooted into the
tree. Everything the test runs on the host (the daemon, ``nodeos join``,
Podman) enters those namespaces and that root with ``nsenter``; killing the
init ends them all, and the namespaces' mounts and network go with it.

Two things Podman needs in a chroot: the tree's root must be a mount point
(containers/storage remounts it while unpacking layers), and the host's
``/sys`` with its cgroup hierarchies (``ip netns exec`` would mount a fresh
sysfs without them). Hosts are linked by one veth pair: the test's own
addresses, nothing routed off the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.packaging import CHROOT_ENV

# pid 1 of the host's namespaces: mount what Podman needs, then sleep chrooted (nsenter -r takes that root).
INIT = """\
set -e
mount --bind "$ROOT" "$ROOT"
cd "$ROOT"
mount -t proc proc proc
mount --rbind /dev dev
mount --rbind /sys sys
mount --make-rslave sys
mount -t tmpfs -o mode=0755 tmpfs run
ip link set lo up
exec chroot . /bin/sleep infinity
"""


@dataclass
class PackageHost:
    name: str
    root: Path
    address: str  # on the link between the hosts, /24
    init: subprocess.Popen | None = None
    pid: int = 0  # the init, pid 1 inside
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self) -> PackageHost:
        self.init = subprocess.Popen(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child",
                                      "sh", "-c", INIT], env={**CHROOT_ENV, "ROOT": str(self.root)},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid = self._wait_init()
        return self

    def _wait_init(self, timeout: float = 10) -> int:
        """The unshare's child once it runs the chrooted sleep, i.e. once the mounts are made."""
        assert self.init is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.init.poll() is not None:
                raise RuntimeError(f"host {self.name}: init exited: {self.init.stderr.read().decode()}")
            children = Path(f"/proc/{self.init.pid}/task/{self.init.pid}/children").read_text().split()
            if children and os.readlink(f"/proc/{children[0]}/exe").endswith("/sleep"):
                return int(children[0])
            time.sleep(0.05)
        raise RuntimeError(f"host {self.name}: init not up after {timeout} s")

    def _enter(self, *, root: bool = True) -> list[str]:
        flags = ["-m", "-n", "-p", "-r", "-w"] if root else ["-n"]
        return ["nsenter", "-t", str(self.pid), *flags]

    def run(self, *argv: str, check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command in the host's tree and namespaces, with the tree's environment."""
        done = subprocess.run([*self._enter(), "env", "-i", *_env(), *argv], capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(argv)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def run_outside(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command of this machine (kubectl, ip) in the host's network namespace only."""
        done = subprocess.run([*self._enter(root=False), *argv], capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(argv)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def spawn(self, *argv: str, log: Path) -> subprocess.Popen:
        """A long-running command in the host (the daemon), its output in ``log`` (on this machine)."""
        with log.open("ab") as out:
            proc = subprocess.Popen([*self._enter(), "env", "-i", *_env(), *argv], stdout=out,
                                    stderr=subprocess.STDOUT)
        self.processes.append(proc)
        return proc

    def write(self, path: str, text: str) -> None:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def stop(self) -> None:
        """SIGTERM what was spawned (the daemon leaves its pods), remove the pods, end the namespaces."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.init is not None and self.init.poll() is None:
            if (self.root / "usr/bin/podman").exists():
                self.run("sh", "-c", "podman pod rm -af -t 0; podman rm -af -t 0", check=False, timeout=120)
            self.init.kill()
            self.init.wait(timeout=10)
        if self.init is not None and self.init.stderr is not None:
            self.init.stderr.close()


def _env() -> list[str]:
    return [f"{key}={value}" for key, value in CHROOT_ENV.items()]


def link(a: PackageHost, b: PackageHost, tag: str) -> None:
    """One veth pair between the two hosts, their addresses on it and a default route over it."""
    left, right = f"np{tag}a", f"np{tag}b"
    subprocess.run(["ip", "link", "add", left, "type", "veth", "peer", "name", right], check=True)
    for host, device in ((a, left), (b, right)):
        subprocess.run(["ip", "link", "set", device, "netns", str(host.pid)], check=True)
        host.run_outside("ip", "addr", "add", f"{host.address}/24", "dev", device)
        host.run_outside("ip", "link", "set", device, "up")
        host.run_outside("ip", "route", "add", "default", "dev", device)
