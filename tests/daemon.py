"""Start real nodeos daemons as processes for integration and end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY_TIMEOUT = 30.0


def node_is_ready(node: dict) -> bool:
    """Whether a Node's Ready condition is True."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    """A `nodeos daemon` process on loopback ports, with its own data dir.

    A master (or "all") is ready when its API answers /readyz. A worker serves
    no API: give it the master's URL as ``server``; it is ready once its Node
    is Ready in the master's API. ``extra_config`` is TOML appended to the
    file, for sections the harness does not write itself ([agent],
    [controllers], [cluster]...).

    By default a master runs its API alone: ``disable`` names the scheduler
    and the controller manager, as the API tests were written for. Pass
    ``disable=()`` for the whole control plane (``tests.cluster.Cluster`` does).
    """

    workdir: Path
    role: str = "master"
    port: int = field(default_factory=free_port)
    insecure_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    name: str = "test-master"
    server: str | None = None
    extra_config: str = ""
    # An API-only master by default, as the API tests were written for; Cluster enables everything.
    disable: tuple[str, ...] = ("scheduler", "controller-manager")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.insecure_port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "nodeos.toml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "daemon.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        server = f'server = "{self.server}"\n' if self.server else ""
        disable = ", ".join(f'"{name}"' for name in self.disable)
        self.config_path.write_text(
            f'[node]\nname = "{self.name}"\nrole = "{self.role}"\ndata_dir = "{self.workdir / "data"}"\n'
            f"disable = [{disable}]\n"
            f'[api]\nlisten = "127.0.0.1:{self.port}"\ninsecure_listen = "127.0.0.1:{self.insecure_port}"\n'
            f"{server}{self.extra_config}"
        )

    def start(self) -> Daemon:
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the process without waiting for it to be ready (to start several at once)."""
        if not self.config_path.exists():
            self.write_config()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nodeos", "daemon", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            if self.is_ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"daemon not ready after {timeout}s:\n{self.log()}")

    def is_ready(self) -> bool:
        try:
            if self.role == "worker":
                assert self.server, "a worker needs the master's URL as server"
                response = httpx.get(f"{self.server}/api/v1/nodes/{self.name}", timeout=1)
                return response.status_code == 200 and node_is_ready(response.json())
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kubeconfig(self) -> Path:
        path = self.workdir / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: nodeos\n  cluster:\n    server: {self.url}\n"
            "users:\n- name: admin\n  user: {}\n"
            "contexts:\n- name: nodeos\n  context:\n    cluster: nodeos\n    user: admin\n"
            "current-context: nodeos\n"
        )
        return path


def kubeconfig_for(daemon: Daemon, path: Path, *args: str) -> Path:
    """`nodeos kubeconfig --config <its TOML> ARGS` (the TLS port; admin unless ARGS name a user) in `path`."""
    result = subprocess.run([sys.executable, "-m", "nodeos", "kubeconfig", "--config", str(daemon.config_path), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout)
    return path
