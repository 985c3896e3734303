"""`nodeos daemon` on a faulty host: each fault is one line naming the thing and a non-zero exit, no traceback.

Real processes and sockets: a port held by another process (a second
daemon, or a plain listener), a data dir that is a file, lies under one or
sits on a read-only mount, an audit log that cannot be written, a store
that is not a database, and the cluster CA and serving files broken in
<data_dir>/pki with ``tls = true``.
A port in use, or an address not on the host, exits 1 (systemd retries: the
holder may be on its way out, the address may come with the network at
boot); what needs the operator exits 2, which the unit does not restart.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nodeos.api.tls import ensure_serving
from nodeos.config import load
from tests.daemon import Daemon, free_port

NODEOS = [sys.executable, "-m", "nodeos", "daemon", "--config"]


def daemon(config: Path, *, wrap: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``nodeos daemon`` to its exit; a daemon that starts serving fails the test by its timeout."""
    return subprocess.run([*(wrap or []), *NODEOS, str(config)], capture_output=True, text=True, timeout=30)


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == f"error: {message}\n"


def write(path: Path, toml: str) -> Path:
    path.write_text(toml)
    return path


@pytest.fixture
def held() -> Iterator[int]:
    """A port another process listens on."""
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys, time\n"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); print('ok', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "ok\n"
    yield port
    holder.kill()
    holder.wait()
    holder.stdout.close()


def master_toml(data: Path, listen: int, insecure: int | None = None, extra: str = "") -> str:
    insecure_line = f'insecure_listen = "127.0.0.1:{insecure}"\n' if insecure else ""
    return (f'[node]\ndata_dir = "{data}"\ndisable = ["scheduler", "controller-manager"]\n'
            f'[api]\nlisten = "127.0.0.1:{listen}"\n{insecure_line}{extra}')


def test_the_secure_port_in_use(tmp_path, held):
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "data", held))
    assert_one_line(daemon(config), 1, f"{config}: [api] listen: 127.0.0.1:{held} is in use by another process")
    assert not (tmp_path / "data").exists()  # nothing started


def test_the_insecure_port_in_use(tmp_path, held):
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "data", free_port(), held))
    assert_one_line(daemon(config), 1,
                    f"{config}: [api] insecure_listen: 127.0.0.1:{held} is in use by another process")


def test_the_agent_port_in_use(tmp_path, held):
    config = write(tmp_path / "n.toml", (
        f'[node]\nrole = "all"\ndata_dir = "{tmp_path / "data"}"\n[api]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[agent]\naddress = "127.0.0.1"\nport = {held}\n'))
    assert_one_line(daemon(config), 1, f"{config}: [agent] port: 127.0.0.1:{held} is in use by another process")


def test_a_second_daemon_on_the_same_ports(tmp_path):
    first = Daemon(tmp_path / "first")
    first.start()
    try:
        config = write(tmp_path / "second.toml", master_toml(tmp_path / "second", first.port, first.insecure_port))
        assert_one_line(daemon(config), 1,
                        f"{config}: [api] listen: 127.0.0.1:{first.port} is in use by another process")
        assert first.is_ready()  # the first one is untouched
    finally:
        first.stop()


def test_an_address_not_of_this_host(tmp_path):
    config = write(tmp_path / "n.toml", f'[node]\ndata_dir = "{tmp_path / "data"}"\n'
                                        '[api]\nlisten = "192.0.2.1:6443"\ntls = true\n')
    # exit 1, retried by systemd: at boot the address may come with the network a moment later
    assert_one_line(daemon(config), 1, f"{config}: [api] listen: 192.0.2.1:6443 is not an address of this host")


def test_a_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "data").write_text("not a directory")
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "data", free_port()))
    assert_one_line(daemon(config), 2, f"{config}: [node] data_dir: {tmp_path / 'data'} is not a directory")


def test_a_data_dir_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "file" / "data", free_port()))
    assert_one_line(daemon(config), 2,
                    f"{config}: [node] data_dir: cannot create {tmp_path / 'file' / 'data'}: Not a directory")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="a read-only bind mount takes root and unshare")
def test_a_read_only_data_dir(tmp_path):
    """As root, permissions do not stop writing: a read-only mount (in a mount namespace of the test's own) does."""
    data = tmp_path / "data"
    data.mkdir()
    config = write(tmp_path / "n.toml", master_toml(data, free_port()))
    mount = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'mount --bind -o ro "{data}" "{data}" && exec "$@"', "sh"]
    assert_one_line(daemon(config, wrap=mount), 2,
                    f"{config}: [node] data_dir: {data} is not writable: Read-only file system")


def test_an_audit_log_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("")
    audit = tmp_path / "file" / "audit.log"
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "data", free_port(), extra=f'audit_log = "{audit}"\n'))
    assert_one_line(daemon(config), 2, f"{config}: [api] audit_log: {audit.parent} is not a directory")


def test_a_store_that_is_not_a_database(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "store.db").write_bytes(b"overwritten by mistake" * 100)
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "data", free_port()))
    assert_one_line(daemon(config), 2, (
        f'{config}: [store] backend "sqlite": {tmp_path / "data" / "store.db"}: file is not a database; '
        "restore it from a backup, or move it away for an empty cluster"))


def test_a_store_left_by_a_sigkill_starts(tmp_path):
    """The check must not refuse a store with a write-ahead log still to apply."""
    node = Daemon(tmp_path / "node")
    node.start()
    try:
        namespace = {"metadata": {"name": "kept"}}
        assert httpx.post(f"{node.url}/api/v1/namespaces", json=namespace).status_code == 201
        node.kill()
        assert (tmp_path / "node" / "data" / "store.db-wal").exists()
        node.start()
        assert httpx.get(f"{node.url}/api/v1/namespaces/kept").status_code == 200
    finally:
        node.stop()


@pytest.fixture
def tls_node(tmp_path) -> Path:
    """A TLS master's config whose CA and serving files exist, as its first start left them."""
    config = write(tmp_path / "n.toml", master_toml(tmp_path / "data", free_port(), extra="tls = true\n"))
    (tmp_path / "data").mkdir(mode=0o700)
    ensure_serving(load(config), [])
    return config


@pytest.mark.parametrize(("damage", "message"), [
    (lambda pki: (pki / "ca.crt").write_text("garbage"), "{pki}/ca.crt: not a PEM certificate"),
    (lambda pki: (pki / "ca.key").unlink(), "{pki}/ca.key: no such file: the cluster CA is not in {pki}"),
    (lambda pki: (pki / "apiserver.key").write_text((pki / "apiserver.key").read_text()[:100]),
     "{pki}/apiserver.key: not an unencrypted PEM private key"),
    (lambda pki: (pki / "apiserver.crt").write_bytes(b"\0" * 10), "{pki}/apiserver.crt: not a PEM certificate"),
    (lambda pki: [(pki / name).unlink() for name in ("ca.crt", "ca.key")],
     "{pki}/ca.crt: missing, with ca.key, though apiserver.crt it signed is there: restore the cluster CA, or "
     "remove {pki} for a new one (voiding every credential the old one issued)"),
    (lambda pki: (shutil.rmtree(pki), pki.write_text("")),
     "{pki}: not a directory (the cluster CA and the API's certificates go there)"),
], ids=["corrupt-ca-cert", "missing-ca-key", "truncated-serving-key", "corrupt-serving-cert", "lost-ca",
        "pki-a-file"])
def test_broken_certificates(tls_node, damage, message):
    pki = tls_node.parent / "data" / "pki"
    damage(pki)
    assert_one_line(daemon(tls_node), 2, message.format(pki=pki))


def test_a_missing_serving_certificate_is_made_again(tls_node):
    """Not a fault: the serving certificate is the master's to issue, from the CA that is still there."""
    pki = tls_node.parent / "data" / "pki"
    (pki / "apiserver.crt").unlink()
    (pki / "apiserver.key").unlink()
    node = Daemon(tls_node.parent, extra_config="tls = true\n")  # its data dir is the same
    node.start()
    try:
        assert (pki / "apiserver.crt").exists() and (pki / "apiserver.key").exists()
    finally:
        node.stop()
