"""Pod volumes on the host: emptyDir (on disk and tmpfs), hostPath types, subPaths, mounts, clean-up."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from nodeos.agent.volumes import VolumeSource, container_mounts, prepare_volumes, remove_pod_dir

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def pod(volumes, containers=None):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"volumes": volumes, "containers": containers or [{"name": "c"}]}}


def mounted(path: Path) -> str | None:
    """The filesystem type mounted at ``path``, if any."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return fields[fields.index("-") + 1]
    return None


def test_empty_dirs_are_made_world_writable_under_the_pod_dir_and_preparing_again_is_harmless(tmp_path):
    p = pod([{"name": "scratch", "emptyDir": {}}, {"name": "defaulted"}])
    volumes, problems = prepare_volumes(p, tmp_path / "pod")
    assert problems == []
    path = tmp_path / "pod" / "volumes" / "empty-dir" / "scratch"
    assert volumes["scratch"] == VolumeSource("scratch", "emptyDir", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o777
    assert volumes["defaulted"].kind == "emptyDir"  # no source at all: scratch space, as in Kubernetes
    (path / "kept").write_text("x")
    again, problems = prepare_volumes(p, tmp_path / "pod")
    assert again == volumes and problems == []
    assert (path / "kept").read_text() == "x"


@needs_root
def test_memory_empty_dir_is_one_tmpfs_with_its_size_limit_and_is_unmounted_on_removal(tmp_path):
    pod_dir = tmp_path / "pod"
    p = pod([{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}])
    try:
        volumes, problems = prepare_volumes(p, pod_dir)
        assert problems == []
        path = volumes["mem"].path
        assert volumes["mem"].memory
        assert mounted(path) == "tmpfs"
        assert os.statvfs(path).f_blocks * os.statvfs(path).f_frsize == 8 * 2**20
        assert stat.S_IMODE(path.stat().st_mode) == 0o777
        _, problems = prepare_volumes(p, pod_dir)  # again: not mounted twice
        assert problems == []
        assert sum(1 for line in Path("/proc/self/mountinfo").read_text().splitlines()
                   if line.split()[4] == str(path)) == 1
        (path / "file").write_text("in memory")
    finally:
        remove_pod_dir(pod_dir)
    assert mounted(path) is None
    assert not pod_dir.exists()


def test_remove_pod_dir_of_a_missing_dir_is_no_error(tmp_path):
    remove_pod_dir(tmp_path / "never-made")


def test_unsupported_sources_are_problems(tmp_path):
    p = pod([{"name": "cfg", "downwardAPI": {"items": []}},
             {"name": "claim", "persistentVolumeClaim": {"claimName": "x"}},
             {"name": "huge", "emptyDir": {"medium": "HugePages"}}, {"name": "ok", "emptyDir": {}}])
    volumes, problems = prepare_volumes(p, tmp_path)
    assert problems == ["volume 'cfg': type downwardAPI is not supported",
                        "volume 'claim': type persistentVolumeClaim is not supported",
                        "volume 'huge': emptyDir medium HugePages is not supported"]
    assert set(volumes) == {"ok"}


def host_path(path, kind=None):
    source = {"path": str(path)}
    if kind is not None:
        source["type"] = kind
    return pod([{"name": "h", "hostPath": source}])


@pytest.mark.parametrize("kind", ["", None, "DirectoryOrCreate"])
def test_host_path_directories_are_created_when_missing(tmp_path, kind):
    target = tmp_path / "made" / "here"
    volumes, problems = prepare_volumes(host_path(target, kind), tmp_path / "pod")
    assert problems == []
    assert volumes["h"] == VolumeSource("h", "hostPath", target)
    assert target.is_dir()
    assert not (tmp_path / "pod").exists()  # a hostPath lives where it is, not in the pod's directory


def test_host_path_file_or_create_makes_an_empty_file(tmp_path):
    _, problems = prepare_volumes(host_path(tmp_path / "f", "FileOrCreate"), tmp_path / "pod")
    assert problems == []
    assert (tmp_path / "f").is_file() and (tmp_path / "f").read_text() == ""


def test_host_path_type_checks(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        good = [("dir", "Directory"), ("link", "Directory"), ("file", "File"), ("sock", "Socket"),
                ("file", "FileOrCreate"), ("dir", "DirectoryOrCreate"), ("file", ""), ("/dev/null", "CharDevice")]
        for name, kind in good:
            assert prepare_volumes(host_path(tmp_path / name, kind), tmp_path / "pod")[1] == [], (name, kind)
        bad = [("missing", "Directory", "is not a directory"), ("file", "Directory", "is not a directory"),
               ("dir", "File", "is not a file"), ("missing", "File", "is not a file"),
               ("file", "DirectoryOrCreate", "is not a directory"), ("dir", "FileOrCreate", "is not a file"),
               ("file", "Socket", "is not a socket file"), ("file", "CharDevice", "is not a character device"),
               ("/dev/null", "BlockDevice", "is not a block device")]
        for name, kind, message in bad:
            path = tmp_path / name
            assert prepare_volumes(host_path(path, kind), tmp_path / "pod")[1] == [
                f"volume 'h': hostPath type check failed: {path} {message}"], (name, kind)
    finally:
        sock.close()
    assert not (tmp_path / "missing").exists()
    assert prepare_volumes(host_path("relative/path"), tmp_path)[1] == [
        "volume 'h': hostPath 'relative/path' is not absolute"]
    assert prepare_volumes(host_path(tmp_path / "x", "Bogus"), tmp_path)[1] == [
        "volume 'h': hostPath type 'Bogus' is not supported"]


def test_container_mounts_bind_volumes_read_only_with_propagation(tmp_path):
    volumes = {"data": VolumeSource("data", "emptyDir", tmp_path / "data"),
               "host": VolumeSource("host", "hostPath", Path("/srv"))}
    container = {"name": "c", "volumeMounts": [
        {"name": "data", "mountPath": "/data"},
        {"name": "host", "mountPath": "/srv", "readOnly": True, "mountPropagation": "HostToContainer"},
        {"name": "data", "mountPath": "/logs", "subPath": "logs/app", "mountPropagation": "Bidirectional"},
    ]}
    mounts, problems = container_mounts(container, volumes)
    assert problems == []
    assert mounts == [
        {"destination": "/data", "type": "bind", "source": str(tmp_path / "data"), "options": ["rbind", "rw"]},
        {"destination": "/srv", "type": "bind", "source": "/srv", "options": ["rbind", "ro", "rslave"]},
        {"destination": "/logs", "type": "bind", "source": str(tmp_path / "data" / "logs" / "app"),
         "options": ["rbind", "rw", "rshared"]},
    ]


def test_container_mounts_problems():
    volumes = {"data": VolumeSource("data", "emptyDir", Path("/v/data"))}
    container = {"name": "c", "volumeMounts": [
        {"name": "nope", "mountPath": "/a"},
        {"name": "data", "mountPath": "/b", "subPath": "../escape"},
        {"name": "data", "mountPath": "/c", "subPath": "/abs"},
        {"name": "data", "mountPath": "/d", "subPathExpr": "$(POD_NAME)"},
        {"name": "data", "mountPath": "/e"},
    ]}
    mounts, problems = container_mounts(container, volumes)
    assert [m["destination"] for m in mounts] == ["/e"]
    assert problems == [
        "volumeMount 'nope' at '/a': no volume of that name is ready",
        "volumeMount 'data' at '/b': subPath '../escape': must be a relative path without '..'",
        "volumeMount 'data' at '/c': subPath '/abs': must be a relative path without '..'",
        "volumeMount 'data' at '/d': subPathExpr is not supported",
    ]


def test_sub_paths_are_created_for_every_container_with_the_volumes_mode(tmp_path):
    (tmp_path / "host").mkdir(mode=0o750)
    os.chmod(tmp_path / "host", 0o750)
    p = pod([{"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {"path": str(tmp_path / "host")}}],
            containers=[{"name": "a", "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "a/b"}]},
                        {"name": "b", "volumeMounts": [{"name": "host", "mountPath": "/y", "subPath": "h"}]}])
    p["spec"]["initContainers"] = [{"name": "i", "volumeMounts": [{"name": "data", "mountPath": "/z",
                                                                   "subPath": "init"}]}]
    volumes, problems = prepare_volumes(p, tmp_path / "pod")
    assert problems == []
    data = volumes["data"].path
    assert stat.S_IMODE((data / "a" / "b").stat().st_mode) == 0o777
    assert (data / "init").is_dir()
    assert stat.S_IMODE((tmp_path / "host" / "h").stat().st_mode) == 0o750


def test_a_sub_path_through_a_symlink_out_of_the_volume_is_refused_before_anything_is_made(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    p = pod([{"name": "data", "emptyDir": {}}],
            containers=[{"name": "a", "volumeMounts": [{"name": "data", "mountPath": "/x", "subPath": "link/new"}]}])
    data = tmp_path / "pod" / "volumes" / "empty-dir" / "data"
    data.mkdir(parents=True)
    (data / "link").symlink_to(outside)  # as a container could have made it
    _, problems = prepare_volumes(p, tmp_path / "pod")
    assert problems == ["container 'a': volumeMount 'data' subPath 'link/new': leads out of the volume"]
    assert not (outside / "new").exists()


def test_remove_pod_dir_leaves_host_paths_alone(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("x")
    p = pod([{"name": "h", "hostPath": {"path": str(host)}}, {"name": "e", "emptyDir": {}}])
    prepare_volumes(p, tmp_path / "pod")
    remove_pod_dir(tmp_path / "pod")
    assert not (tmp_path / "pod").exists()
    assert (host / "keep").read_text() == "x"
