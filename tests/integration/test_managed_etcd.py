"""The managed etcd with real etcd processes: a daemon that runs its member, init and join with peer TLS,
member removal, snapshot save and restore, restarts after a crash, and the errors an operator meets.

Members run in this test's trio run under the daemon's own ``supervise`` (two "masters" without two API
servers); the ``nodeos etcd`` commands run as the real CLI in a subprocess; one test runs a whole daemon.
"""

from __future__ import annotations

import base64
import os
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from nodeos.config import Config, load
from nodeos.daemon import run_daemon, supervise
from nodeos.errors import ConfigError
from nodeos.etcd import run_etcd
from nodeos.etcd.member import LocalMember
from tests.daemon import Daemon, free_port


def _node(tmp_path: Path, name: str, *, client_tls: bool = False) -> Path:
    """A master's TOML with a managed etcd member on free loopback ports; returns its path."""
    workdir = tmp_path / name
    workdir.mkdir(parents=True)
    path = workdir / "nodeos.toml"
    path.write_text(
        f'[node]\nname = "{name}"\ndata_dir = "{workdir / "data"}"\n'
        f'[etcd]\nmanaged = true\nclient_listen = "127.0.0.1:{free_port()}"\n'
        f'peer_listen = "127.0.0.1:{free_port()}"\nclient_tls = {"true" if client_tls else "false"}\n')
    return path


def _member(config_path: Path) -> LocalMember:
    return LocalMember.from_config(load(config_path))


async def nodeos_etcd(*args: str | Path) -> tuple[int, str]:
    """Run ``nodeos etcd ARGS`` as the CLI; its exit code and its stdout+stderr."""
    result = await trio.run_process([sys.executable, "-m", "nodeos", "etcd", *map(str, args)], check=False,
                                    capture_stdout=True, capture_stderr=True)
    return result.returncode, (result.stdout + result.stderr).decode()


async def _ok(*args: str | Path) -> str:
    code, out = await nodeos_etcd(*args)
    assert code == 0, out
    return out


@asynccontextmanager
async def running(config_path: Path) -> AsyncIterator[Config]:
    """The member of ``config_path`` under the daemon's supervise, until the block ends."""
    config = load(config_path)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(40):
            await nursery.start(partial(supervise, "etcd", partial(run_etcd, config), initial_backoff=0.2))
        yield config
        nursery.cancel_scope.cancel()


async def gateway(url: str, path: str, body: dict | None = None) -> dict:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.post(f"{url}{path}", json=body or {})
        response.raise_for_status()
        return response.json()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def put(url: str, key: str, value: str) -> None:
    await gateway(url, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})


async def get(url: str, key: str) -> str | None:
    kvs = (await gateway(url, "/v3/kv/range", {"key": _b64(key)})).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


async def members(url: str) -> dict[str, list[str]]:
    answer = await gateway(url, "/v3/cluster/member/list")
    return {m.get("name", ""): m["peerURLs"] for m in answer["members"]}


def _etcd_pids(data_dir: Path) -> list[int]:
    """The etcd processes whose data dir is under ``data_dir`` (only ever ours: the path is the test's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"etcd") and f"--data-dir={data_dir}".encode() in cmdline:
                pids.append(int(entry.name))
    return pids


async def test_init_then_join_a_second_member_over_peer_tls_then_remove_it(tmp_path):
    first, second = _node(tmp_path, "m1"), _node(tmp_path, "m2")
    out = await _ok("init", "--config", first)
    assert "new cluster" in out
    one, two = _member(first), _member(second)
    async with running(first):
        # A joining master without the cluster CA is told where it comes from; nothing is added.
        code, out = await nodeos_etcd("join", "--config", second, "--endpoint", one.client_url)
        assert code == 2
        assert "ca.crt: no such file" in out
        assert "copy ca.crt and ca.key" in out
        assert list(await members(one.client_url)) == ["m1"]

        two.pki_dir.mkdir(parents=True)
        for name in ("ca.crt", "ca.key"):
            (two.pki_dir / name).write_bytes((one.pki_dir / name).read_bytes())
        await _ok("join", "--config", second, "--endpoint", one.client_url)
        async with running(second):
            assert await members(one.client_url) == {"m1": [one.peer_url], "m2": [two.peer_url]}
            assert one.peer_url.startswith("https://") and two.peer_url.startswith("https://")
            await put(one.client_url, "/registry/x", "replicated")
            assert await get(two.client_url, "/registry/x") == "replicated"

            listing = await _ok("member", "list", "--config", second)
            assert listing.count("https://127.0.0.1:") == 2, listing
            await _peer_port_wants_a_cluster_certificate(one)

            out = await _ok("member", "remove", "m2", "--endpoint", one.client_url)
            assert "m2 removed" in out
            assert list(await members(one.client_url)) == ["m1"]


async def _peer_port_wants_a_cluster_certificate(member: LocalMember) -> None:
    """The peer port speaks TLS and lets in only holders of a certificate from the cluster CA."""
    ca = str(member.pki_dir / "ca.crt")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), timeout=5) as http:
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake is refused
            await http.get(f"{member.peer_url}/members")
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(member.pki_dir / "etcd-peer.crt", member.pki_dir / "etcd-peer.key")
    async with httpx.AsyncClient(verify=context, timeout=5) as http:
        assert (await http.get(f"{member.peer_url}/members")).status_code == 200
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.HTTPError):  # and it speaks no plain HTTP
            await http.get(member.peer_url.replace("https://", "http://") + "/members")


async def test_a_snapshot_restores_into_a_new_member_that_has_the_keys(tmp_path):
    source, target = _node(tmp_path, "m1"), _node(tmp_path, "m9")
    await _ok("init", "--config", source)
    one, nine = _member(source), _member(target)
    snapshot = tmp_path / "backup.db"
    async with running(source):
        await put(one.client_url, "/registry/pods/default/a", "kept")
        out = await _ok("snapshot", "save", snapshot, "--config", source)
        assert "revision 2" in out
        assert snapshot.stat().st_mode & 0o777 == 0o600
        assert not list(tmp_path.glob(".backup.db*"))  # no partial file left
        # A running member's directory is never restored over, even with --force.
        code, out = await nodeos_etcd("snapshot", "restore", snapshot, "--config", source, "--force")
        assert code == 1
        assert "the etcd member is running on it" in out

    nine.pki_dir.mkdir(parents=True)
    for name in ("ca.crt", "ca.key"):
        (nine.pki_dir / name).write_bytes((one.pki_dir / name).read_bytes())
    await _ok("snapshot", "restore", snapshot, "--config", target)
    async with running(target):
        assert await get(nine.client_url, "/registry/pods/default/a") == "kept"
        assert list(await members(nine.client_url)) == ["m9"]  # a new one-member cluster

    code, out = await nodeos_etcd("snapshot", "restore", snapshot, "--config", target)
    assert code == 1
    assert "pass --force" in out
    await _ok("snapshot", "restore", snapshot, "--config", target, "--force")
    assert len(list(nine.data_dir.glob("etcd.before-restore-*"))) == 1


async def test_a_crashed_member_is_restarted(tmp_path):
    path = _node(tmp_path, "m1")
    await _ok("init", "--config", path)
    member = _member(path)
    async with running(path):
        await put(member.client_url, "k", "v")
        [pid] = _etcd_pids(member.etcd_dir)
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(20):
            while True:
                await trio.sleep(0.2)
                try:
                    if await get(member.client_url, "k") == "v":
                        break
                except httpx.HTTPError:
                    pass
        assert _etcd_pids(member.etcd_dir) not in ([], [pid])
    assert _etcd_pids(member.etcd_dir) == []  # stopped with its supervisor


def test_a_daemon_runs_its_member_first_stores_in_it_and_takes_it_down_even_when_killed(tmp_path):
    daemon = Daemon(tmp_path / "d")
    client, peer = free_port(), free_port()
    daemon.extra_config = f'[etcd]\nmanaged = true\nclient_listen = "127.0.0.1:{client}"\n' \
                          f'peer_listen = "127.0.0.1:{peer}"\n'
    daemon.write_config()
    out = trio.run(_ok, "init", "--config", daemon.config_path)
    store = out[out.index("[store]"):out.index("\n\n", out.index("[store]"))]  # the lines init suggests
    assert f'etcd_endpoints = ["http://127.0.0.1:{client}"]' in store
    daemon.extra_config += store + "\n"
    daemon.write_config()
    try:
        daemon.start()
        assert "etcd: started" in daemon.log()
        assert daemon.log().index("etcd: started") < daemon.log().index("api: started")
        created = httpx.post(f"{daemon.url}/api/v1/namespaces", json={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "in-etcd"}}, timeout=10)
        assert created.status_code == 201, created.text
        keys = trio.run(gateway, f"http://127.0.0.1:{client}", "/v3/kv/range", {
            "key": _b64("/nodeos/"), "range_end": _b64("/nodeos0"), "keys_only": True})
        assert any(base64.b64decode(kv["key"]).decode().endswith("/in-etcd") for kv in keys["kvs"])
        data = daemon.workdir / "data" / "etcd"
        assert len(_etcd_pids(data)) == 1
        daemon.kill()  # SIGKILL: no cleanup code runs, the kernel's parent-death signal takes etcd along
        deadline = time.monotonic() + 10
        while _etcd_pids(data) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _etcd_pids(data) == []
        daemon.start()  # and the same member comes back on its data
        assert daemon.stop() == 0, daemon.log()
        assert _etcd_pids(data) == []
    finally:
        daemon.stop()
        for pid in _etcd_pids(daemon.workdir / "data" / "etcd"):  # an orphan, if the test failed
            os.kill(pid, signal.SIGKILL)


async def test_a_node_never_initialised_does_not_start(tmp_path):
    config = load(_node(tmp_path, "m1"))
    with pytest.raises(ConfigError, match=r"\[etcd\] managed: this node has no etcd member yet: run `nodeos etcd init"):
        await run_daemon(config)


async def test_bad_inputs_are_one_line_errors(tmp_path):
    path = _node(tmp_path, "m1")
    member = _member(path)
    cases = [
        (("member", "list"), 2, "give --endpoint URL, or --config"),
        (("member", "list", "--endpoint", "ftp://x"), 2, "is not an http(s) URL"),
        (("member", "list", "--endpoint", f"http://127.0.0.1:{free_port()}"), 1, "cannot reach etcd at"),
        (("member", "list", "--endpoint", "https://127.0.0.1:1"), 2, "an https endpoint needs --config"),
        (("snapshot", "save", tmp_path, "--config", path), 1, "is a directory"),
        (("snapshot", "restore", tmp_path / "none.db", "--config", path), 1, "no such snapshot file"),
        (("snapshot", "restore", path, "--config", path), 1, "etcdctl snapshot status"),
        (("init", "--config", tmp_path / "missing.toml"), 2, "missing.toml: cannot read"),
        (("join", "--config", path), 2, "--endpoint"),
    ]
    for args, code, message in cases:
        got, out = await nodeos_etcd(*args)
        assert (got, message in out) == (code, True), (args, out)
        assert "Traceback" not in out
    await _ok("init", "--config", path)
    async with running(path):
        code, out = await nodeos_etcd("init", "--config", path)
        assert code == 2
        assert "already has an etcd member" in out
        code, out = await nodeos_etcd("member", "remove", "nobody", "--config", path)
        assert (code, 'no member "nobody" in the cluster (members: m1)' in out) == (1, True), out
    assert member.initialized


async def test_with_client_tls_only_holders_of_a_cluster_certificate_are_served(tmp_path):
    path = _node(tmp_path, "m1", client_tls=True)
    await _ok("init", "--config", path)
    member = _member(path)
    assert member.client_url.startswith("https://")
    async with running(path):
        ca = str(member.pki_dir / "ca.crt")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), timeout=5) as http:
            with pytest.raises(httpx.HTTPError):  # no client certificate (a GET: no body left half sent)
                await http.get(f"{member.client_url}/health")
        listing = await _ok("member", "list", "--config", path)
        assert member.client_url in listing
        out = await _ok("snapshot", "save", tmp_path / "tls.db", "--config", path)
        assert "snapshot saved" in out
        code, out = await nodeos_etcd("member", "list", "--endpoint", member.client_url)
        assert (code, "an https endpoint needs --config" in out) == (2, True), out
