"""ConfigMap, Secret and projected volumes: their files (items, modes, defaultMode, optional), the atomic
writer's layout and swap, refused paths, tmpfs for secrets, read-only mounts and refreshes."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from nodeos.agent import projection
from nodeos.agent.projection import FileProjection, ProjectionProblem, payload, write_atomically
from nodeos.agent.volumes import container_mounts, prepare_volumes, refresh_projections, remove_pod_dir
from tests.unit.test_volumes import mounted

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def objects(overrides=None):
    found = {
        ("configmaps", "cfg"): {"metadata": {"name": "cfg"}, "data": {"app.conf": "x=1", "other": "o"},
                                "binaryData": {"blob": b64(b"\x00\x01")}},
        ("secrets", "creds"): {"metadata": {"name": "creds"}, "data": {"password": b64(b"hunter2")}},
        ("configmaps", "gone"): None,
        ("secrets", "gone"): None,
    }
    found.update(overrides or {})
    return found


def files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """What a reader of the volume sees, through the symlinks: path → (content, mode)."""
    seen = {}
    for root, dirs, names in os.walk(directory, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith("..")]
        for name in names:
            path = Path(root) / name
            if not path.relative_to(directory).parts[0].startswith(".."):
                seen[str(path.relative_to(directory))] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return seen


# -- payloads ---------------------------------------------------------------------------------------------

def test_config_map_payload_every_key_with_the_default_mode_binary_data_included():
    got = payload("configMap", {"name": "cfg"}, objects(), "ns")
    assert got == {"app.conf": FileProjection(b"x=1", 0o644), "other": FileProjection(b"o", 0o644),
                   "blob": FileProjection(b"\x00\x01", 0o644)}
    assert payload("configMap", {"name": "cfg", "defaultMode": 0o400}, objects(), "ns")["other"].mode == 0o400


def test_items_choose_keys_paths_and_modes():
    source = {"secretName": "creds", "defaultMode": 0o440,
              "items": [{"key": "password", "path": "db/pass", "mode": 0o400},
                        {"key": "password", "path": "copy"}]}
    assert payload("secret", source, objects(), "ns") == {"db/pass": FileProjection(b"hunter2", 0o400),
                                                          "copy": FileProjection(b"hunter2", 0o440)}


def test_missing_objects_and_keys():
    with pytest.raises(ProjectionProblem, match=r'^configmap "gone" not found$'):
        payload("configMap", {"name": "gone"}, objects(), "ns")
    with pytest.raises(ProjectionProblem, match=r'^secret "gone" not found$'):
        payload("secret", {"secretName": "gone"}, objects(), "ns")
    assert payload("secret", {"secretName": "gone", "optional": True}, objects(), "ns") == {}
    with pytest.raises(ProjectionProblem, match="configmap references non-existent config key: nope"):
        payload("configMap", {"name": "cfg", "items": [{"key": "nope", "path": "p"}]}, objects(), "ns")
    assert payload("configMap", {"name": "cfg", "optional": True, "items": [{"key": "nope", "path": "p"}]},
                   objects(), "ns") == {}
    with pytest.raises(ProjectionProblem, match="couldn't get configmap ns/unread"):
        payload("configMap", {"name": "unread", "optional": True}, objects(), "ns")


def test_projected_sources_merge_and_unsupported_ones_are_problems():
    source = {"defaultMode": 0o600, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "other", "path": "conf/other"}]}},
        {"secret": {"name": "creds"}},
        {"secret": {"name": "gone", "optional": True}},
    ]}
    assert payload("projected", source, objects(), "ns") == {"conf/other": FileProjection(b"o", 0o600),
                                                             "password": FileProjection(b"hunter2", 0o600)}
    with pytest.raises(ProjectionProblem, match="projected source serviceAccountToken is not supported"):
        payload("projected", {"sources": [{"serviceAccountToken": {"path": "token"}}]}, objects(), "ns")
    with pytest.raises(ProjectionProblem, match="mode 4096 is not between 0 and 0777"):
        payload("configMap", {"name": "cfg", "defaultMode": 0o10000}, objects(), "ns")


# -- the atomic writer ------------------------------------------------------------------------------------

def test_layout_is_versioned_dir_data_link_and_visible_links(tmp_path):
    assert write_atomically(tmp_path, {"a": FileProjection(b"1", 0o644), "d/b": FileProjection(b"2", 0o600)})
    assert os.readlink(tmp_path / "a") == "..data/a" and os.readlink(tmp_path / "d") == "..data/d"
    version = os.readlink(tmp_path / "..data")
    assert version.startswith("..") and (tmp_path / version).is_dir()
    assert stat.S_IMODE((tmp_path / version).stat().st_mode) == 0o755
    assert files(tmp_path) == {"a": (b"1", 0o644), "d/b": (b"2", 0o600)}
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", version, "a", "d"])


def test_writing_the_same_again_changes_nothing_and_a_change_swaps_versions(tmp_path):
    first = {"a": FileProjection(b"1", 0o644), "gone-later": FileProjection(b"x", 0o644)}
    write_atomically(tmp_path, first)
    version = os.readlink(tmp_path / "..data")
    assert not write_atomically(tmp_path, first)
    assert os.readlink(tmp_path / "..data") == version
    assert write_atomically(tmp_path, {"a": FileProjection(b"1", 0o400)})  # a mode change is a change
    assert write_atomically(tmp_path, {"a": FileProjection(b"2", 0o400), "new": FileProjection(b"n", 0o644)})
    assert files(tmp_path) == {"a": (b"2", 0o400), "new": (b"n", 0o644)}
    assert not os.path.lexists(tmp_path / "gone-later")
    assert [e for e in os.listdir(tmp_path) if e.startswith("..") and e != "..data"] == \
        [os.readlink(tmp_path / "..data")]  # the old versions are gone


def test_the_old_version_stays_whole_until_the_rename(tmp_path, monkeypatch):
    """A reader sees the old set of files, complete, right up to the swap of ``..data``; then the new one."""
    write_atomically(tmp_path, {"a": FileProjection(b"old-a", 0o644), "b": FileProjection(b"old-b", 0o644)})
    seen_before_swap = []
    real_rename = Path.rename

    def watching_rename(self, target):
        if Path(target).name == "..data":
            seen_before_swap.append(files(tmp_path))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", watching_rename)
    write_atomically(tmp_path, {"a": FileProjection(b"new-a", 0o644), "b": FileProjection(b"new-b", 0o644)})
    assert seen_before_swap == [{"a": (b"old-a", 0o644), "b": (b"old-b", 0o644)}]
    assert files(tmp_path) == {"a": (b"new-a", 0o644), "b": (b"new-b", 0o644)}


def test_a_failed_write_leaves_the_old_version_and_no_debris(tmp_path, monkeypatch):
    write_atomically(tmp_path, {"a": FileProjection(b"old", 0o644)})
    before = sorted(os.listdir(tmp_path))

    def failing_chmod(path, mode):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(projection.os, "chmod", failing_chmod)
    with pytest.raises(OSError):
        write_atomically(tmp_path, {"a": FileProjection(b"new", 0o644)})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == before and files(tmp_path) == {"a": (b"old", 0o644)}


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape", "a/../../escape", "..data", "..hidden/x", "",
                                  "a//b", "./a", "a/.", "nul\0byte", "lone\udc80surrogate", "x" * 256,
                                  "a/" * 2100 + "b"])
def test_paths_that_could_leave_the_volume_or_clash_are_refused_before_anything_is_written(tmp_path, path):
    with pytest.raises(ProjectionProblem, match="invalid path"):
        write_atomically(tmp_path, {"fine": FileProjection(b"1", 0o644), path: FileProjection(b"2", 0o644)})
    assert os.listdir(tmp_path) == []


def test_a_path_cannot_be_a_file_and_a_directory(tmp_path):
    with pytest.raises(ProjectionProblem, match="'a' is a file"):
        write_atomically(tmp_path, {"a": FileProjection(b"1", 0o644), "a/b": FileProjection(b"2", 0o644)})


# -- the volumes of a pod ---------------------------------------------------------------------------------

def pod(volumes, mounts=()):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"volumes": volumes, "containers": [{"name": "c", "volumeMounts": list(mounts)}]}}


def test_config_map_volume_is_written_under_the_pod_dir_and_mounted_read_only(tmp_path):
    p = pod([{"name": "conf", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "app.conf"}]}}],
            [{"name": "conf", "mountPath": "/etc/app"}, {"name": "conf", "mountPath": "/etc/app.conf",
                                                         "subPath": "app.conf"}])
    volumes, problems = prepare_volumes(p, tmp_path / "pod", objects())
    assert problems == []
    path = tmp_path / "pod" / "volumes" / "configmap" / "conf"
    assert volumes["conf"].path == path and volumes["conf"].read_only and not volumes["conf"].memory
    assert files(path) == {"app.conf": (b"x=1", 0o644)}
    mounts, problems = container_mounts(p["spec"]["containers"][0], volumes)
    assert problems == []
    assert [m["options"] for m in mounts] == [["rbind", "ro"], ["rbind", "ro"]]
    assert mounts[0]["source"] == str(path)
    version = os.readlink(path / "..data")
    assert mounts[1]["source"] == str(path / version / "app.conf")  # a subPath binds the file of this version


def test_missing_config_map_is_a_problem_and_optional_gives_an_empty_volume(tmp_path):
    p = pod([{"name": "a", "configMap": {"name": "gone"}}, {"name": "b", "secret": {"secretName": "x"}}])
    volumes, problems = prepare_volumes(p, tmp_path / "pod", objects())
    assert problems == ["volume 'a': configmap \"gone\" not found", "volume 'b': couldn't get secret ns/x"]
    assert volumes == {} and not (tmp_path / "pod").exists()  # nothing made for a volume with a problem
    p = pod([{"name": "a", "configMap": {"name": "gone", "optional": True}}])
    volumes, problems = prepare_volumes(p, tmp_path / "pod", objects())
    assert problems == [] and files(volumes["a"].path) == {}


def test_a_missing_sub_path_in_a_config_map_volume_is_a_problem_not_a_new_directory(tmp_path):
    p = pod([{"name": "conf", "configMap": {"name": "cfg"}}],
            [{"name": "conf", "mountPath": "/x", "subPath": "nope"}])
    _, problems = prepare_volumes(p, tmp_path / "pod", objects())
    assert problems == ["container 'c': volumeMount 'conf' subPath 'nope': does not exist in the volume"]
    assert not os.path.lexists(tmp_path / "pod" / "volumes" / "configmap" / "conf" / "nope")


def test_hostile_keys_and_item_paths_are_problems(tmp_path):
    hostile = {("configmaps", "cfg"): {"metadata": {"name": "cfg"}, "data": {"..data": "x", "ok": "y"}}}
    _, problems = prepare_volumes(pod([{"name": "v", "configMap": {"name": "cfg"}}]), tmp_path / "pod", hostile)
    assert problems == ["volume 'v': invalid path '..data': must be relative and may not start with '..'"]
    assert not (tmp_path / "pod").exists()  # refused before anything was made
    p = pod([{"name": "v", "configMap": {"name": "cfg", "items": [{"key": "ok", "path": "../../../etc/x"}]}}])
    _, problems = prepare_volumes(p, tmp_path / "pod", hostile)
    assert problems == ["volume 'v': invalid path '../../../etc/x': must be relative and may not start with '..'"]
    assert not (tmp_path / "etc").exists()


def test_refresh_rewrites_only_what_changed_and_keeps_files_when_the_object_is_gone(tmp_path):
    p = pod([{"name": "conf", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}])
    volumes, _ = prepare_volumes(p, tmp_path / "pod", objects())
    path = volumes["conf"].path
    assert refresh_projections(p, tmp_path / "pod", objects()) == ([], [])
    changed = objects({("configmaps", "cfg"): {"metadata": {"name": "cfg"}, "data": {"app.conf": "x=2"}}})
    assert refresh_projections(p, tmp_path / "pod", changed) == (["conf"], [])
    assert files(path) == {"app.conf": (b"x=2", 0o644)}
    deleted = objects({("configmaps", "cfg"): None})
    assert refresh_projections(p, tmp_path / "pod", deleted) == ([], ["volume 'conf': configmap \"cfg\" not found"])
    assert files(path) == {"app.conf": (b"x=2", 0o644)}


@needs_root
def test_secret_and_projected_volumes_are_on_a_tmpfs_removed_with_the_pod(tmp_path):
    pod_dir = tmp_path / "pod"
    p = pod([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}},
             {"name": "all", "projected": {"sources": [{"secret": {"name": "creds"}},
                                                       {"configMap": {"name": "cfg"}}]}}])
    try:
        volumes, problems = prepare_volumes(p, pod_dir, objects())
        assert problems == []
        for name in ("s", "all"):
            assert volumes[name].memory
            assert mounted(volumes[name].path) == "tmpfs"
        assert files(volumes["s"].path) == {"password": (b"hunter2", 0o400)}
        assert set(files(volumes["all"].path)) == {"password", "app.conf", "other", "blob"}
        _, problems = prepare_volumes(p, pod_dir, objects())  # again: no second tmpfs
        assert problems == []
        assert sum(line.split()[4] == str(volumes["s"].path)
                   for line in Path("/proc/self/mountinfo").read_text().splitlines()) == 1
    finally:
        remove_pod_dir(pod_dir)
    assert not pod_dir.exists() and mounted(volumes["s"].path) is None
