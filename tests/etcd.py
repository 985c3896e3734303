"""Real etcd processes for tests and benchmarks: one member or a small cluster on loopback.

Every member gets a free client and peer port on 127.0.0.1, its own data dir
under ``workdir`` and its own log file, so a failing test can point at what
etcd said. Timings are short (heartbeat 50 ms, election 500 ms) so a killed
leader is replaced in about a second; 500 ms still leaves room for two busy
cores shared with other test processes.
"""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.daemon import free_port

START_TIMEOUT = 30.0


@dataclass
class _Member:
    name: str
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    started_once: bool = False

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


class EtcdCluster:
    """``members`` etcd processes forming one cluster; a context manager.

    ``start()`` launches every member and waits until each answers /health.
    ``kill(i)`` SIGKILLs member ``i``; ``start_member(i)`` (or ``start(i)``)
    brings it back on the same ports and data dir
    (``--initial-cluster-state existing``).
    """

    def __init__(self, workdir: Path, members: int = 1, *, quota_bytes: int = 2 << 30,
                 client_tls: bool = False) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed: apt-get install etcd-server")
        self.binary = binary
        self.workdir = Path(workdir)
        self.quota_bytes = quota_bytes
        self.members = [_Member(f"m{i}") for i in range(members)]
        # With client_tls, clients speak https and must show a certificate from the cluster's test CA.
        self.tls_files: tuple[Path, Path, Path] | None = None  # CA, client certificate, client key
        self._server_pair: tuple[Path, Path] | None = None
        if client_tls:
            self._make_certificates()

    def _make_certificates(self) -> None:
        from nodeos import pki

        directory = self.workdir / "pki"
        ca = pki.ensure_ca(directory, "etcd-test-ca")
        # "peer" usage (server and client auth): etcd's gateway dials its own gRPC port with this certificate.
        server = pki.issue_certificate(ca, directory, "server", common_name="etcd", ips=["127.0.0.1"],
                                       dns_names=["localhost"], usage="peer")
        client = pki.issue_certificate(ca, directory, "client", common_name="nodeos", usage="client")
        self._server_pair = (server.cert_path, server.key_path)
        self.tls_files = (ca.cert_path, client.cert_path, client.key_path)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_files else "http"

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url.replace("http:", f"{self.scheme}:", 1) for m in self.members]

    def log_path(self, i: int) -> Path:
        return self.workdir / f"{self.members[i].name}.log"

    def start(self, i: int | None = None) -> EtcdCluster:
        """Start every member, or restart only member ``i`` (see ``start_member``)."""
        if i is not None:
            self.start_member(i)
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i in range(len(self.members)):
            self._launch(i)
        try:
            for i in range(len(self.members)):
                self.wait_healthy(i)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, i: int) -> None:
        member = self.members[i]
        client_url = self.endpoints[i]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        state = "existing" if member.started_once else "new"
        args = [
            self.binary, "--name", member.name, "--data-dir", str(self.workdir / member.name),
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", member.peer_url, "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-state", state,
            "--initial-cluster-token", f"nodeos-test-{id(self)}",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--quota-backend-bytes", str(self.quota_bytes),
        ]  # fmt: skip
        if self.tls_files and self._server_pair:
            args += [f"--cert-file={self._server_pair[0]}", f"--key-file={self._server_pair[1]}",
                     f"--trusted-ca-file={self.tls_files[0]}", "--client-cert-auth"]
        log = self.log_path(i).open("ab")
        try:
            member.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        finally:
            log.close()
        member.started_once = True

    def wait_healthy(self, i: int, timeout: float = START_TIMEOUT) -> None:
        """Until member ``i`` answers /health with a leader (etcd says "true")."""
        member = self.members[i]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if member.proc is not None and member.proc.poll() is not None:
                raise RuntimeError(f"etcd {member.name} exited; see {self.log_path(i)}")
            try:
                response = self.http_get(i, "/health")
                if response.status_code == 200 and response.json().get("health") == "true":
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd {member.name} not healthy after {timeout:.0f} s; see {self.log_path(i)}")

    def http_get(self, i: int, path: str) -> httpx.Response:
        """GET from member ``i``'s client URL, with the client certificate when TLS is on."""
        if not self.tls_files:
            return httpx.get(f"{self.endpoints[i]}{path}", timeout=1)
        ca, cert, key = self.tls_files
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        return httpx.get(f"{self.endpoints[i]}{path}", timeout=1, verify=context)

    def kill(self, i: int) -> None:
        member = self.members[i]
        if member.proc is not None and member.proc.poll() is None:
            member.proc.send_signal(signal.SIGKILL)
            member.proc.wait(10)

    def start_member(self, i: int, *, wait: bool = True) -> None:
        """Restart a killed (or stopped) member with its data dir."""
        self.kill(i)
        self._launch(i)
        if wait:
            self.wait_healthy(i)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a second: a leader whose peers are dead
        spends seconds trying to hand its leadership over before it exits."""
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.terminate()
        for member in self.members:
            if member.proc is not None:
                try:
                    member.proc.wait(1)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                    member.proc.wait(10)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
