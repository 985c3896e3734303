"""Pod volumes on the host, and the bind mounts that put them into containers.

An emptyDir is a directory under the pod's own directory
(``pod_dir/volumes/empty-dir/<name>``), bound into every container that
mounts it, so the pod's containers share it and it lives as long as the pod.
With ``medium: Memory`` a tmpfs (``sizeLimit`` its size) is mounted on that
directory on the host, as the kubelet does, so that it is still one volume
shared by all the containers; a tmpfs per container would not be. A hostPath
is the host's path itself, checked or created as its ``type`` says.

ConfigMap, Secret and projected volumes (``nodeos.agent.projection`` works
out and writes their files) live under ``pod_dir/volumes/<kind>/<name>``;
Secret and projected ones on a tmpfs of their own, as the kubelet puts them,
so that secrets never reach the disk. They are bound read-only into every
container (the kubelet's ReadOnlyAPIDataVolumes), and ``refresh_projections``
rewrites them while the pod runs, atomically and only when something
changed. Other volume types (persistentVolumeClaim, downwardAPI…) are not
served: each is a *problem*, a string the caller turns into a FailedMount
event and a waiting reason.

Everything here touches the filesystem (and may mount): run it off the
event loop. ``container_mounts`` only joins paths, so it may run anywhere.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nodeos.agent.configdata import ConfigObjects
from nodeos.agent.projection import ProjectionProblem, payload, write_atomically
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.volumes import SOURCES

__all__ = ["PROJECTED_KINDS", "VolumeSource", "container_mounts", "prepare_volumes", "refresh_projections",
           "remove_pod_dir"]

EMPTY_DIR = Path("volumes") / "empty-dir"
PROJECTED_KINDS = {"configMap": "configmap", "secret": "secret", "projected": "projected"}  # → their directory
_EMPTY_DIR_MODE = 0o777  # as the kubelet makes them: any container user may write
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV = 2, 4


@dataclass(frozen=True)
class VolumeSource:
    """Where one of the pod's volumes is on the host."""

    name: str
    kind: str                 # "emptyDir", "hostPath", or one of PROJECTED_KINDS
    path: Path
    memory: bool = False      # on a tmpfs (an emptyDir of medium Memory, a secret or projected volume)

    @property
    def read_only(self) -> bool:
        """Bound read-only whatever the volumeMount says: the API's data, which only the agent writes."""
        return self.kind in PROJECTED_KINDS


# -- preparing the pod's volumes -------------------------------------------------------------------------

def prepare_volumes(pod: dict, pod_dir: Path, objects: ConfigObjects | None = None,
                    ) -> tuple[dict[str, VolumeSource], list[str]]:
    """Every volume of the pod made ready on the host, by name, and the problems of those that
    cannot be; also the ``subPath`` directories the pod's containers mount. Safe to repeat.
    ``objects``: the ConfigMaps and Secrets the pod references (``configdata.fetch_referenced``)."""
    sources: dict[str, VolumeSource] = {}
    problems: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        try:
            sources[name] = _prepare(volume, pod_dir, pod["metadata"]["namespace"], objects or {})
        except _VolumeProblem as exc:
            problems.append(f"volume {name!r}: {exc}")
        except OSError as exc:
            problems.append(f"volume {name!r}: {exc.strerror or exc}")
    if not problems:
        problems += _prepare_sub_paths(pod, sources)
    return sources, problems


def refresh_projections(pod: dict, pod_dir: Path, objects: ConfigObjects) -> tuple[list[str], list[str]]:
    """Rewrite the pod's ConfigMap, Secret and projected volumes from ``objects`` where they changed: the
    names of those rewritten, and the problems (a volume with a problem keeps what it had)."""
    changed: list[str] = []
    problems: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        kind = _kind(volume)
        if kind not in PROJECTED_KINDS or not _valid_name(name):
            continue
        try:
            if _write_projection(kind, name, volume[kind], pod_dir, pod["metadata"]["namespace"], objects)[1]:
                changed.append(name)
        except (_VolumeProblem, OSError) as exc:
            problems.append(f"volume {name!r}: {getattr(exc, 'strerror', None) or exc}")
    return changed, problems


class _VolumeProblem(Exception):
    """A volume cannot be made ready; the message says why."""


def _kind(volume: dict) -> str:
    return next((s for s in SOURCES if volume.get(s) is not None), "emptyDir")


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def _prepare(volume: dict, pod_dir: Path, namespace: str, objects: ConfigObjects) -> VolumeSource:
    name = volume.get("name", "")
    if not _valid_name(name):
        raise _VolumeProblem("not a valid volume name")
    kind = _kind(volume)
    if kind == "emptyDir":
        return _empty_dir(name, volume.get("emptyDir") or {}, pod_dir)
    if kind == "hostPath":
        return _host_path(name, volume["hostPath"])
    if kind in PROJECTED_KINDS:
        return _write_projection(kind, name, volume[kind], pod_dir, namespace, objects)[0]
    raise _VolumeProblem(f"type {kind} is not supported")


def _write_projection(kind: str, name: str, source: dict, pod_dir: Path, namespace: str,
                      objects: ConfigObjects) -> tuple[VolumeSource, bool]:
    """A ConfigMap, Secret or projected volume with its files written (``projection``); whether they changed.
    The files are worked out before anything is made, so a volume with a problem leaves nothing behind."""
    try:
        files = payload(kind, source if isinstance(source, dict) else {}, objects, namespace)
        memory = kind != "configMap"
        path = pod_dir / "volumes" / PROJECTED_KINDS[kind] / name
        path.mkdir(parents=True, exist_ok=True)
        if memory and not os.path.ismount(path):
            _mount_tmpfs(path, None)
        os.chmod(path, _EMPTY_DIR_MODE)
        return VolumeSource(name, kind, path, memory=memory), write_atomically(path, files)
    except ProjectionProblem as exc:
        raise _VolumeProblem(str(exc)) from None


def _empty_dir(name: str, source: dict, pod_dir: Path) -> VolumeSource:
    medium = source.get("medium") or ""
    if medium not in ("", "Memory"):
        raise _VolumeProblem(f"emptyDir medium {medium} is not supported")
    path = pod_dir / EMPTY_DIR / name
    path.mkdir(parents=True, exist_ok=True)
    if medium == "Memory" and not os.path.ismount(path):
        _mount_tmpfs(path, _size_limit(source))
    os.chmod(path, _EMPTY_DIR_MODE)
    return VolumeSource(name, "emptyDir", path, memory=medium == "Memory")


def _size_limit(source: dict) -> int | None:
    if source.get("sizeLimit") is None:
        return None
    try:
        return int(parse_quantity(source["sizeLimit"]))
    except ValueError as exc:
        raise _VolumeProblem(f"emptyDir sizeLimit {source['sizeLimit']!r}: {exc}") from None


def _mount_tmpfs(path: Path, size: int | None) -> None:
    options = f"mode={_EMPTY_DIR_MODE:o}" + (f",size={size}" if size else "")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options.encode()) != 0:
        code = ctypes.get_errno()
        raise _VolumeProblem(f"mounting a tmpfs on {path}: {os.strerror(code)}")


# hostPath types: what must be at the path, and the message when it is not.
_HOST_PATH_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"),
    "DirectoryOrCreate": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"),
    "FileOrCreate": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def _host_path(name: str, source: dict) -> VolumeSource:
    """The kubelet's type checks (following symlinks); ``…OrCreate`` creates a missing path, and so does
    no type at all, as container runtimes do for a missing bind-mount source."""
    path, kind = Path(source.get("path") or ""), source.get("type") or ""
    if not path.is_absolute():
        raise _VolumeProblem(f"hostPath {str(path)!r} is not absolute")
    if not path.exists():
        if kind in ("", "DirectoryOrCreate"):
            path.mkdir(mode=0o755, parents=True, exist_ok=True)
        elif kind == "FileOrCreate":
            path.touch(mode=0o644)
    if kind in _HOST_PATH_CHECKS:
        check, message = _HOST_PATH_CHECKS[kind]
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            mode = 0
        if not check(mode):
            raise _VolumeProblem(f"hostPath type check failed: {path} {message}")
    elif kind:
        raise _VolumeProblem(f"hostPath type {kind!r} is not supported")
    return VolumeSource(name, "hostPath", path)


def _prepare_sub_paths(pod: dict, sources: dict[str, VolumeSource]) -> list[str]:
    """Every ``subPath`` the pod's containers mount, made ready (``_ensure_sub_path``)."""
    problems: list[str] = []
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for mount in container.get("volumeMounts") or []:
            source = sources.get(mount.get("name", ""))
            if source is None or not mount.get("subPath"):
                continue
            try:
                _ensure_sub_path(source, mount["subPath"])
            except (_VolumeProblem, OSError) as exc:
                problems.append(f"container {container.get('name', '')!r}: volumeMount {mount.get('name')!r} "
                                f"subPath {mount['subPath']!r}: {getattr(exc, 'strerror', None) or exc}")
    return problems


def _ensure_sub_path(source: VolumeSource, sub_path: str) -> None:
    """A missing subPath becomes a directory with the volume's permissions (the kubelet does so for every
    volume type); one that leads out of its volume, by ``..`` or by a symlink, is refused before anything
    is created. (A container swapping in a symlink after this check is not guarded against.)"""
    path = _sub_path(source, sub_path)
    if not path.resolve().is_relative_to(source.path.resolve()):
        raise _VolumeProblem("leads out of the volume")
    if not path.exists() and source.read_only:
        raise _VolumeProblem("does not exist in the volume")
    if not path.exists():
        path.mkdir(parents=True)
        os.chmod(path, stat.S_IMODE(source.path.stat().st_mode))


def _sub_path(source: VolumeSource, sub_path: str) -> Path:
    relative = PurePosixPath(sub_path)
    if relative.is_absolute() or ".." in relative.parts:
        raise _VolumeProblem("must be a relative path without '..'")
    return source.path / relative


# -- a container's mounts --------------------------------------------------------------------------------

_PROPAGATION = {"HostToContainer": "rslave", "Bidirectional": "rshared"}


def container_mounts(container: dict, volumes: dict[str, VolumeSource]) -> tuple[list[dict], list[str]]:
    """The container's ``volumeMounts`` as Podman ``mounts`` (OCI bind mounts) of the volumes
    ``prepare_volumes`` made ready, and the problems of those that cannot be mounted."""
    mounts: list[dict] = []
    problems: list[str] = []
    for mount in container.get("volumeMounts") or []:
        name = mount.get("name", "")
        where = f"volumeMount {name!r} at {mount.get('mountPath', '')!r}"
        source = volumes.get(name)
        if source is None:
            problems.append(f"{where}: no volume of that name is ready")
            continue
        if mount.get("subPathExpr"):
            problems.append(f"{where}: subPathExpr is not supported")
            continue
        try:
            path = _sub_path(source, mount["subPath"]) if mount.get("subPath") else source.path
        except _VolumeProblem as exc:
            problems.append(f"{where}: subPath {mount['subPath']!r}: {exc}")
            continue
        if source.read_only and mount.get("subPath"):  # the file of this version: a subPath sees no updates
            path = Path(os.path.realpath(path))
        options = ["rbind", "ro" if mount.get("readOnly") or source.read_only else "rw"]
        if mount.get("mountPropagation") in _PROPAGATION:
            options.append(_PROPAGATION[mount["mountPropagation"]])
        mounts.append({"destination": mount.get("mountPath", ""), "type": "bind", "source": str(path),
                       "options": options})
    return mounts, problems


# -- cleaning up -----------------------------------------------------------------------------------------

def remove_pod_dir(pod_dir: Path) -> None:
    """Remove the pod's directory and its emptyDirs, unmounting what is mounted under it first (deepest
    first, lazily, so a mount still busy cannot keep its files). Host paths are never under it."""
    if not os.path.lexists(pod_dir):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for mount_point in sorted(_mounts_under(pod_dir), key=lambda p: len(p.parts), reverse=True):
        if libc.umount2(os.fsencode(mount_point), _MNT_DETACH) != 0:
            code = ctypes.get_errno()
            if code not in (errno.EINVAL, errno.ENOENT):  # not (or no longer) a mount point
                raise OSError(code, f"unmounting {mount_point}: {os.strerror(code)}")
    shutil.rmtree(pod_dir)


def _mounts_under(directory: Path) -> list[Path]:
    root = directory.resolve()
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as mountinfo:
        for line in mountinfo:
            mount_point = Path(_unescape(line.split()[4]))
            if mount_point.is_relative_to(root):
                found.append(mount_point)
    return found


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (``\\040``)."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
