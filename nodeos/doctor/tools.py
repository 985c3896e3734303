"""The tools a node drives: nft, Podman, its OCI runtime, and the Podman API socket."""

from __future__ import annotations

import shutil
import socket
import subprocess

from nodeos.config import Config
from nodeos.doctor import Check

__all__ = ["check_nft", "check_podman", "podman_answers"]


def _run(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_nft(config: Config, *, root: bool) -> Check:
    needed = config.proxy.mode == "nftables"
    if shutil.which("nft") is None:
        return Check("nft", "fail" if needed else "warn",
                     "not installed: the nftables Service proxy and the forward guard need it",
                     ("apt-get install nftables  # or dnf install nftables",))
    version = (_run("nft", "--version") or subprocess.CompletedProcess((), 1, "", "")).stdout.strip()
    if not root:
        return Check("nft", "warn", f"{version}; listing rules needs root (CAP_NET_ADMIN): not tried",
                     ("run nodeos doctor as root",))
    done = _run("nft", "list", "tables")
    if done is None or done.returncode != 0:
        error = " ".join((done.stderr if done else "did not answer").split())
        return Check("nft", "fail" if needed else "warn", f"{version} cannot list tables: {error}",
                     ("a kernel with CONFIG_NF_TABLES; modprobe nf_tables",))
    return Check("nft", "ok", f"{version}, lists tables")


def podman_answers(path: str, timeout: float = 2.0) -> bool:
    """Whether a libpod API answers ``/_ping`` on the unix socket ``path``. PermissionError propagates."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            answer = sock.recv(4096)
        except (FileNotFoundError, ConnectionRefusedError, TimeoutError):
            return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]


def check_podman(config: Config, *, root: bool) -> list[Check]:
    checks = []
    podman = shutil.which("podman")
    if podman is None:
        checks.append(Check("podman", "fail", "not installed: the node runs its pods on Podman",
                            ("apt-get install podman  # or dnf install podman",)))
    else:
        done = _run("podman", "--version")
        checks.append(Check("podman", "ok", done.stdout.strip() if done and done.returncode == 0 else podman))
    runtimes = [name for name in ("runc", "crun") if shutil.which(name)]
    checks.append(Check("OCI runtime", "ok", ", ".join(runtimes)) if runtimes else
                  Check("OCI runtime", "fail", "neither runc nor crun is installed", ("apt-get install runc",)))
    checks.append(_check_socket(config, root=root))
    return checks


def _check_socket(config: Config, *, root: bool) -> Check:
    path, manage = str(config.podman.socket), config.podman.manage
    try:
        if podman_answers(path):
            return Check("podman socket", "ok", f"answers at {path}")
    except PermissionError:
        return Check("podman socket", "warn", f"{path}: permission denied" + ("" if root else " (not root)"),
                     ("run nodeos doctor as root",))
    except OSError as exc:
        return Check("podman socket", "fail" if not manage else "warn", f"{path}: {exc.strerror or exc}")
    if manage:
        return Check("podman socket", "ok", f"nothing answers at {path} yet: the daemon starts "
                                            "`podman system service` on it ([podman] manage = true)")
    return Check("podman socket", "fail", f"nothing answers at {path} and [podman] manage = false",
                 (f"podman system service --time=0 unix://{path}  # or set [podman] manage = true",))
