"""``nodeos store migrate``: SQLite -> etcd -> SQLite with real daemons and a real etcd, and its refusals.

The source is a real daemon's SQLite store: a module fixture starts an
API-only master, creates objects through the API (a Service with its
allocated clusterIP, pods with a status written through /status, a
Deployment), and stops it. Each test copies that store to its own directory.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import trio

from nodeos.api.store.base import KeyValue
from nodeos.api.store.etcd_bulk import MAX_BATCH_BYTES, MAX_BATCH_KEYS, EtcdBulkCreate, batches
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.watchcache import COMPACTION_KEY
from nodeos.errors import StoreError
from tests.daemon import Daemon, free_port
from tests.etcd import EtcdCluster

NAMESPACE = "mig"
OBJECTS = ("/api/v1/namespaces/mig/pods", "/api/v1/namespaces/mig/services",
           "/apis/apps/v1/namespaces/mig/deployments")


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "mig"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def populate(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as api:
        api.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}).raise_for_status()
        for i in range(5):
            created = api.post(f"/api/v1/namespaces/{NAMESPACE}/pods", json=pod(f"p{i}"))
            created.raise_for_status()
            obj = created.json()
            obj["status"] = {"phase": "Running", "podIP": f"10.244.0.{i + 10}"}
            api.put(f"/api/v1/namespaces/{NAMESPACE}/pods/p{i}/status", json=obj).raise_for_status()
        api.post(f"/api/v1/namespaces/{NAMESPACE}/services", json={
            "metadata": {"name": "web"}, "spec": {"selector": {"app": "mig"}, "ports": [{"port": 80}]},
        }).raise_for_status()
        api.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", json={
            "metadata": {"name": "web", "annotations": {"note": "v" * 1000, "unicode": "é✓"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "mig"}},
                     "template": {"metadata": {"labels": {"app": "mig"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
        }).raise_for_status()


def objects(url: str) -> dict[str, dict]:
    """The test's objects by kind/name, without resourceVersion (the target renumbers it)."""
    out = {}
    with httpx.Client(base_url=url, timeout=10) as api:
        for path in OBJECTS:
            listed = api.get(path)
            listed.raise_for_status()
            for obj in listed.json()["items"]:
                obj["metadata"].pop("resourceVersion")
                out[f"{path.rsplit('/', 1)[1]}/{obj['metadata']['name']}"] = obj
    return out


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """One etcd member for the module; each test keeps to its own key prefix."""
    with EtcdCluster(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def source_store(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """A stopped daemon's store.db with the test's objects in it, and those objects as the API served them."""
    daemon = Daemon(tmp_path_factory.mktemp("source"))
    daemon.start()
    try:
        populate(daemon.url)
        served = objects(daemon.url)
    finally:
        assert daemon.stop() == 0
    return daemon.workdir / "data", served


def copy_store(source_dir: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True)
    for file in source_dir.glob("store.db*"):
        shutil.copy(file, dest_dir / file.name)
    return dest_dir / "store.db"


def migrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nodeos", "store", "migrate", *args],
                          capture_output=True, text=True, timeout=120)


def etcd_keys(endpoint: str, prefix: str) -> dict[str, bytes]:
    start = prefix.encode()
    end = start[:-1] + bytes([start[-1] + 1])
    response = httpx.post(f"{endpoint}/v3/kv/range", timeout=10, json={
        "key": base64.b64encode(start).decode(), "range_end": base64.b64encode(end).decode()})
    response.raise_for_status()
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
            for kv in response.json().get("kvs", [])}


def etcd_put(endpoint: str, key: str, value: bytes) -> None:
    httpx.post(f"{endpoint}/v3/kv/put", timeout=10, json={
        "key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value).decode(),
    }).raise_for_status()


def sqlite_items(path: Path) -> dict[str, bytes]:
    async def read() -> dict[str, bytes]:
        store = SQLiteStore(path)
        await store.start()
        try:
            items, _ = await store.list("")
        finally:
            await store.close()
        return {kv.key: kv.value for kv in items}

    return trio.run(read)


def etcd_store_config(endpoint: str, prefix: str) -> str:
    return f'[store]\nbackend = "etcd"\netcd_endpoints = ["{endpoint}"]\netcd_prefix = "{prefix}"\n'


def unique_prefix() -> str:
    return f"/mig-{uuid.uuid4().hex[:8]}"


def test_sqlite_to_etcd_to_sqlite_round_trip(tmp_path, source_store, etcd):
    source_dir, served = source_store
    assert len(served) == 7  # 5 pods, a Service, a Deployment
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    original = copy_store(source_dir, tmp_path / "a")
    before = sqlite_items(original)

    # sqlite -> etcd, the SQLite side found through the node's config.
    node = Daemon(tmp_path / "node")
    node.write_config()
    shutil.copytree(original.parent, node.workdir / "data")
    to_etcd = migrate("--from", "sqlite", "--to", "etcd", "--config", str(node.config_path),
                      "--etcd-endpoints", endpoint, "--etcd-prefix", prefix)
    assert to_etcd.returncode == 0, to_etcd.stderr
    assert f"copied and verified {len(before)} keys" in to_etcd.stdout
    assert "pods  " in to_etcd.stdout and "deployments.apps  " in to_etcd.stdout
    assert len(etcd_keys(endpoint, prefix + "/")) == len(before)

    # A master on etcd serves the same objects: names, specs, uids, status, the Service's clusterIP.
    master = Daemon(tmp_path / "master", extra_config=etcd_store_config(endpoint, prefix))
    master.start()
    try:
        assert objects(master.url) == served
    finally:
        assert master.stop() == 0

    # etcd -> sqlite: what the etcd master holds now comes back byte for byte.
    in_etcd = etcd_keys(endpoint, prefix + "/")
    back = tmp_path / "back" / "store.db"
    to_sqlite = migrate("--from", "etcd", "--to", "sqlite", "--sqlite", str(back),
                        "--etcd-endpoints", endpoint, "--etcd-prefix", prefix)
    assert to_sqlite.returncode == 0, to_sqlite.stderr
    returned = sqlite_items(back)
    assert returned == {key.removeprefix(prefix): value for key, value in in_etcd.items()}
    ours = [key for key in before if f"/{NAMESPACE}/" in key or key.endswith(f"/{NAMESPACE}")]
    assert len(ours) == 8  # 5 pods, a Service, a Deployment, the Namespace
    assert {k: returned[k] for k in ours} == {k: before[k] for k in ours}


def test_refuses_a_non_empty_etcd_target_and_writes_nothing(tmp_path, source_store, etcd):
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    etcd_put(endpoint, f"{prefix}/core/pods/x/y", b"{}")
    store = copy_store(source_store[0], tmp_path / "a")
    result = migrate("--from", "sqlite", "--to", "etcd", "--sqlite", str(store),
                     "--etcd-endpoints", endpoint, "--etcd-prefix", prefix)
    assert result.returncode == 1
    assert "is not empty (1 keys, e.g. /core/pods/x/y): nothing was copied" in result.stderr
    assert f"etcdctl --endpoints={endpoint} del --prefix '{prefix}/'" in result.stderr
    assert etcd_keys(endpoint, prefix + "/") == {f"{prefix}/core/pods/x/y": b"{}"}


def test_refuses_a_non_empty_sqlite_target(tmp_path, source_store, etcd):
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    etcd_put(endpoint, f"{prefix}/core/namespaces/other", b'{"metadata": {"name": "other"}}')
    target = copy_store(source_store[0], tmp_path / "a")
    before = sqlite_items(target)
    result = migrate("--from", "etcd", "--to", "sqlite", "--sqlite", str(target),
                     "--etcd-endpoints", endpoint, "--etcd-prefix", prefix)
    assert result.returncode == 1
    assert f"the target sqlite {target} is not empty" in result.stderr
    assert "-wal and -shm files) away" in result.stderr
    assert sqlite_items(target) == before


def test_refuses_while_the_daemon_has_the_store_open(tmp_path, etcd):
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    daemon = Daemon(tmp_path / "running")
    daemon.start()
    try:
        result = migrate("--from", "sqlite", "--to", "etcd", "--config", str(daemon.config_path),
                         "--etcd-endpoints", endpoint, "--etcd-prefix", prefix)
    finally:
        daemon.stop()
    assert result.returncode == 1
    assert "is in use" in result.stderr and "stop the nodeos daemon on that data dir first" in result.stderr
    assert etcd_keys(endpoint, prefix + "/") == {}


def test_refuses_an_unreachable_etcd_and_leaves_no_file(tmp_path, source_store):
    nowhere = f"http://127.0.0.1:{free_port()}"
    back = tmp_path / "back" / "store.db"
    result = migrate("--from", "etcd", "--to", "sqlite", "--sqlite", str(back), "--etcd-endpoints", nowhere,
                     "--timeout", "2")
    assert result.returncode == 1
    assert f"etcd {nowhere}" in result.stderr and "Traceback" not in result.stderr
    assert not back.exists()

    store = copy_store(source_store[0], tmp_path / "a")
    before = sqlite_items(store)
    result = migrate("--from", "sqlite", "--to", "etcd", "--sqlite", str(store), "--etcd-endpoints", nowhere,
                     "--timeout", "2")
    assert result.returncode == 1
    assert f"etcd {nowhere}" in result.stderr and "Traceback" not in result.stderr
    assert sqlite_items(store) == before


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "sqlite", "--to", "sqlite"], "--from and --to are both sqlite"),
    (["--from", "etcd", "--to", "sqlite", "--etcd-endpoints", "localhost:2379"], "is not an http:// or https:// URL"),
    (["--from", "etcd", "--to", "sqlite", "--etcd-endpoints", ","], "no etcd endpoint given"),
    (["--from", "sqlite", "--to", "etcd", "--config", "/nonexistent.toml"], "/nonexistent.toml: cannot read"),
    (["--from", "sqlite", "--to", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--concurrency", "0"],
     "--concurrency must be at least 1"),
])
def test_refuses_bad_flags(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "nodeos", "store", "migrate", *args, "--sqlite",
                             str(tmp_path / "store.db")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_missing_sqlite_source(tmp_path):
    result = migrate("--from", "sqlite", "--to", "etcd", "--sqlite", str(tmp_path / "none.db"),
                     "--etcd-endpoints", "http://127.0.0.1:1")
    assert result.returncode == 1
    assert f"no SQLite store at {tmp_path / 'none.db'}" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_refuses_an_empty_source(tmp_path, etcd):
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    back = tmp_path / "back" / "store.db"
    result = migrate("--from", "etcd", "--to", "sqlite", "--sqlite", str(back), "--etcd-endpoints", endpoint,
                     "--etcd-prefix", prefix)
    assert result.returncode == 1
    assert f"the source etcd {endpoint} prefix '{prefix}' is empty: nothing to migrate" in result.stderr
    assert not back.exists()


async def test_bulk_create_is_all_or_nothing(etcd):
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    batch = [KeyValue(f"/core/pods/ns/p{i}", f"v{i}".encode(), 0) for i in range(3)]
    await trio.to_thread.run_sync(etcd_put, endpoint, f"{prefix}/core/pods/ns/p1", b"other")
    async with EtcdBulkCreate([endpoint], prefix=prefix) as bulk:
        with pytest.raises(StoreError, match=f"{prefix}/core/pods/ns/p1 already exists in etcd with another value"):
            await bulk.create(batch)
        assert await trio.to_thread.run_sync(etcd_keys, endpoint, prefix + "/") == {
            f"{prefix}/core/pods/ns/p1": b"other"}

        other = [KeyValue(f"/core/pods/ns/q{i}", b"x" * 1000, 0) for i in range(200)]
        for part in batches(other):
            await bulk.create(part)
    assert len(await trio.to_thread.run_sync(etcd_keys, endpoint, prefix + "/")) == 201


def test_batches_respect_etcd_limits():
    small = [KeyValue(f"/k{i}", b"v", 0) for i in range(MAX_BATCH_KEYS * 2 + 5)]
    assert [len(b) for b in batches(small)] == [MAX_BATCH_KEYS, MAX_BATCH_KEYS, 5]
    large = [KeyValue(f"/k{i}", b"v" * (MAX_BATCH_BYTES // 3), 0) for i in range(7)]
    assert [len(b) for b in batches(large)] == [2, 2, 2, 1]
    assert [kv for b in batches(large) for kv in b] == large


def test_the_source_compaction_record_is_not_copied(tmp_path, etcd):
    """It names a revision of the source's numbering; in the target it would hide the target's own compactions."""
    endpoint, prefix = etcd.endpoints[0], unique_prefix()
    source = tmp_path / "store.db"

    async def fill() -> None:
        store = SQLiteStore(source)
        await store.start()
        await store.create("/core/namespaces/a", b'{"metadata":{"name":"a"}}')
        await store.create(COMPACTION_KEY, b'{"revision":1}')
        await store.close()

    trio.run(fill)
    result = migrate("--from", "sqlite", "--to", "etcd", "--sqlite", str(source), "--etcd-endpoints", endpoint,
                     "--etcd-prefix", prefix)
    assert result.returncode == 0, result.stderr
    assert "copied and verified 1 keys" in result.stdout
    assert list(etcd_keys(endpoint, prefix + "/")) == [f"{prefix}/core/namespaces/a"]
