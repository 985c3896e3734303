"""A real node's status: what the host has (read from /proc, /sys and statvfs) and what the Node says about it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
from pathlib import Path

import pytest

from nodeos.agent.host import HostStats, default_address, read_host_stats
from nodeos.agent.node_status import (
    MAX_NODE_IMAGES,
    allocatable,
    conditions_need_update,
    host_capacity,
    node_conditions,
    node_images,
    node_status,
)

GI = 2**30
NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
HEALTHY = HostStats(cpus=4, memory_total=8 * GI, memory_available=6 * GI, disk_total=100 * GI,
                    disk_available=50 * GI, pids_in_use=300, pid_max=32768, boot_id="b-1", machine_id="m-1",
                    system_uuid="u-1")


def test_capacity_from_the_host():
    assert host_capacity(HEALTHY) == {"cpu": "4", "memory": "8388608Ki", "pods": "110",
                                      "ephemeral-storage": "104857600Ki"}
    assert host_capacity(HEALTHY, pods=20)["pods"] == "20"


def test_allocatable_is_capacity_less_reserved_and_never_negative():
    capacity = {"cpu": "4", "memory": "8Gi", "pods": 110, "ephemeral-storage": "10Gi"}
    assert allocatable(capacity, {"cpu": "100m", "memory": "256Mi"}) == {
        "cpu": "3900m", "memory": "8126464Ki", "pods": "110", "ephemeral-storage": "10485760Ki"}
    assert allocatable(capacity, {"cpu": "1", "memory": "1000"})["memory"] == str(8 * GI - 1000)
    assert allocatable(capacity, {"cpu": "1"})["cpu"] == "3"
    assert allocatable({"cpu": "1", "memory": "1Gi"}, {"cpu": "1500m", "memory": "2Gi"}) == {"cpu": "0", "memory": "0"}
    assert allocatable({"cpu": "2"}, {"memory": "1Gi"}) == {"cpu": "2"}  # reserved but not there: ignored


def by_type(conditions):
    return {c["type"]: c for c in conditions}


# (field changes at the threshold, still healthy; one step past it; the condition; its reason under pressure)
THRESHOLDS = [
    ({"memory_available": 100 * 2**20}, {"memory_available": 100 * 2**20 - 1},
     "MemoryPressure", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ({"disk_total": 1000, "disk_available": 100}, {"disk_total": 1000, "disk_available": 99},
     "DiskPressure", "KubeletHasDiskPressure", "kubelet has disk pressure"),
    ({"pid_max": 1000, "pids_in_use": 900}, {"pid_max": 1000, "pids_in_use": 901},
     "PIDPressure", "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
]


@pytest.mark.parametrize(("edge", "past", "kind", "reason", "message"), THRESHOLDS)
def test_each_pressure_flips_at_its_threshold(edge, past, kind, reason, message):
    first = node_conditions([], "2026-01-01T12:00:00Z", dataclasses.replace(HEALTHY, **edge))
    assert {c["type"]: c["status"] for c in first} == {
        "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False", "Ready": "True"}
    assert not conditions_need_update(first, NOW, 60, dataclasses.replace(HEALTHY, **edge))

    pressed = dataclasses.replace(HEALTHY, **past)
    assert conditions_need_update(first, NOW, 60, pressed)  # fresh heartbeat, yet a status changed
    second = by_type(node_conditions(first, "2026-01-01T12:00:10Z", pressed))
    assert (second[kind]["status"], second[kind]["reason"], second[kind]["message"]) == ("True", reason, message)
    assert second[kind]["lastTransitionTime"] == "2026-01-01T12:00:10Z"
    assert {k for k, c in second.items() if c["status"] == "True"} == {kind, "Ready"}
    assert second["Ready"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"  # pressure leaves the node Ready

    third = by_type(node_conditions([*second.values()], "2026-01-01T12:00:20Z", pressed))
    assert third[kind]["lastTransitionTime"] == "2026-01-01T12:00:10Z"  # unchanged: time kept
    assert third[kind]["lastHeartbeatTime"] == "2026-01-01T12:00:20Z"
    relieved = by_type(node_conditions([*third.values()], "2026-01-01T12:00:30Z", HEALTHY))
    assert relieved[kind]["status"] == "False" and relieved[kind]["lastTransitionTime"] == "2026-01-01T12:00:30Z"


def test_a_simulated_node_without_stats_is_never_pressed():
    conditions = node_conditions([], "2026-01-01T12:00:00Z", None)
    assert [c["status"] for c in conditions] == ["False", "False", "False", "True"]
    assert not conditions_need_update(conditions, NOW, 60, None)


def libpod_image(tags, size, digests=None):
    return {"Id": f"id{size}", "RepoTags": tags, "RepoDigests": digests, "Size": size, "VirtualSize": size}


def test_images_map_to_kubelet_names_largest_first():
    images = [
        libpod_image(["localhost/a:1"], 10, ["localhost/a@sha256:aa"]),
        libpod_image(["localhost/b:1", "localhost/b:latest"], 30, ["localhost/b@sha256:bb", "localhost/b@sha256:bb"]),
        libpod_image(None, 99, None),  # dangling: no name to ask for it by
        libpod_image(["<none>:<none>"], 98),
        libpod_image([f"localhost/c:{i}" for i in range(7)], 20),
    ]
    assert node_images(images) == [
        {"names": ["localhost/b@sha256:bb", "localhost/b:1", "localhost/b:latest"], "sizeBytes": 30},
        {"names": [f"localhost/c:{i}" for i in range(5)], "sizeBytes": 20},
        {"names": ["localhost/a@sha256:aa", "localhost/a:1"], "sizeBytes": 10},
    ]


def test_images_are_at_most_fifty():
    listed = node_images([libpod_image([f"localhost/i:{n}"], n) for n in range(1, 80)])
    assert len(listed) == MAX_NODE_IMAGES
    assert listed[0]["sizeBytes"] == 79 and listed[-1]["sizeBytes"] == 30


def test_status_of_a_real_node():
    capacity = host_capacity(HEALTHY)
    status = node_status(capacity=capacity, addresses=[], runtime_version="podman://4.3.1", conditions=[],
                         reserved={"cpu": "100m", "memory": "256Mi"}, stats=HEALTHY, port=10250,
                         images=[{"names": ["x:1"], "sizeBytes": 1}])
    assert status["allocatable"]["cpu"] == "3900m"
    assert status["allocatable"]["memory"] == f"{(8 * GI - 256 * 2**20) // 1024}Ki"
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = status["nodeInfo"]
    assert (info["bootID"], info["machineID"], info["systemUUID"]) == ("b-1", "m-1", "u-1")
    assert info["containerRuntimeVersion"] == "podman://4.3.1"
    assert status["images"] == [{"names": ["x:1"], "sizeBytes": 1}]


def test_status_of_a_simulated_node_is_as_before():
    status = node_status(capacity={"cpu": "4", "memory": "8Gi", "pods": 110}, addresses=[],
                         runtime_version="simulated://0", conditions=[])
    assert status["allocatable"] == status["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert "daemonEndpoints" not in status and "images" not in status and "bootID" not in status["nodeInfo"]


# -- reading the host ------------------------------------------------------------------------


def test_this_host_reads_sanely(tmp_path):
    stats = read_host_stats(tmp_path / "not" / "made" / "yet")
    assert 1 <= stats.cpus <= len(os.sched_getaffinity(0))
    assert 0 < stats.memory_available <= stats.memory_total
    assert 0 < stats.disk_available <= stats.disk_total
    assert 0 < stats.pids_in_use < stats.pid_max
    assert stats.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert stats.system_uuid


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


MEMINFO = "MemTotal:       8388608 kB\nMemFree:        1000 kB\nMemAvailable:   6291456 kB\n"


def test_a_cgroup_v2_limit_below_the_host_wins(tmp_path):
    root = write(tmp_path, {
        "proc/meminfo": MEMINFO,
        "proc/sys/kernel/pid_max": "4194304\n", "proc/sys/kernel/threads-max": "100000\n",
        "proc/1/stat": "", "proc/22/stat": "", "proc/self/stat": "",
        "sys/fs/cgroup/memory.max": f"{2 * GI}\n",
        "sys/fs/cgroup/memory.current": f"{GI}\n",
        "sys/fs/cgroup/memory.stat": f"anon 1\ninactive_file {GI // 2}\n",
        "sys/fs/cgroup/cpu.max": "50000 100000\n",
        "sys/fs/cgroup/pids.max": "500\n",
        "etc/machine-id": "abc\n",
    })
    stats = read_host_stats(tmp_path, root)
    assert (stats.memory_total, stats.memory_available) == (2 * GI, 2 * GI - GI // 2)  # cache is reclaimable
    assert stats.cpus == 1
    assert (stats.pids_in_use, stats.pid_max) == (2, 500)
    assert (stats.machine_id, stats.system_uuid, stats.boot_id) == ("abc", "abc", "")


def test_cgroup_v1_without_a_limit_leaves_the_host_figures(tmp_path):
    root = write(tmp_path, {
        "proc/meminfo": MEMINFO,
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    })
    stats = read_host_stats(tmp_path, root)
    assert (stats.memory_total, stats.memory_available) == (8 * GI, 6 * GI)
    assert stats.cpus == len(os.sched_getaffinity(0))
    assert stats.pid_max == 32768  # nothing said: the kernel's default


def test_cgroup_v1_limit_and_quota(tmp_path):
    root = write(tmp_path, {
        "proc/meminfo": MEMINFO,
        "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{GI}\n",
        "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{GI - 50 * 2**20}\n",
        "sys/fs/cgroup/memory/memory.stat": "cache 0\ntotal_inactive_file 0\n",
        "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "150000\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    })
    stats = read_host_stats(tmp_path, root)
    assert (stats.memory_total, stats.memory_available) == (GI, 50 * 2**20)
    assert stats.cpus == min(2, len(os.sched_getaffinity(0)))  # 1.5 cpus run two threads


def test_default_address_is_this_hosts_ipv4():
    address = ipaddress.ip_address(default_address())
    assert address.version == 4


ROUTES = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def test_default_address_without_a_default_route_is_loopback(tmp_path):
    assert default_address(write(tmp_path / "a", {"proc/net/route": ROUTES})) == "127.0.0.1"
    only_local = ROUTES + "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    assert default_address(write(tmp_path / "b", {"proc/net/route": only_local})) == "127.0.0.1"
    gone = ROUTES + "nodeos-no-such0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    assert default_address(write(tmp_path / "c", {"proc/net/route": gone})) == "127.0.0.1"


def test_default_address_takes_the_lowest_metric_route(tmp_path):
    real = [line.split() for line in Path("/proc/net/route").read_text().splitlines()[1:]]
    interface = next((f[0] for f in real if f[1] == "00000000" and f[0] != "lo"), None)
    if interface is None:
        pytest.skip("this host has no default route")
    routes = ROUTES + (f"{interface}\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
                       "lo\t00000000\t00000000\t0001\t0\t0\t5\t00000000\t0\t0\t0\n")
    assert default_address(write(tmp_path, {"proc/net/route": routes})) == "127.0.0.1"
    address = default_address(write(tmp_path, {"proc/net/route": routes.replace("\t5\t", "\t500\t")}))
    assert address == default_address() and not ipaddress.ip_address(address).is_loopback
