"""Pod volumes on the host, and the bind mounts that put them into containers.

An emptyDir is a directory under the pod's own directory
(``pod_dir/volumes/empty-dir/<name>``), bound into every container that
mounts it, so the pod's containers share it and it lives as long as the pod.
With ``medium: Memory`` a tmpfs (``sizeLimit`` its size) is mounted on that
directory on the host, as the kubelet does, so that it is still one volume
shared by all the containers; a tmpfs per container would not be. A hostPath
is the host's path itself, checked or created as its ``type`` says.

Other volume types (configMap, secret, persistentVolumeClaim…) are not served
yet: each is a *problem*, a string the caller turns into a FailedMount event
and a waiting reason.

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

from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.volumes import SOURCES

__all__ = ["VolumeSource", "container_mounts", "prepare_volumes", "remove_pod_dir"]

EMPTY_DIR = Path("volumes") / "empty-dir"
_EMPTY_DIR_MODE = 0o777  # as the kubelet makes them: any container user may write
_MNT_DETACH = 2
_MS_NOSUID, _MS_NODEV = 2, 4


@dataclass(frozen=True)
class VolumeSource:
    """Where one of the pod's volumes is on the host."""

    name: str
    kind: str                 # "emptyDir" or "hostPath"
    path: Path
    memory: bool = False      # an emptyDir on a tmpfs (medium: Memory)


# -- preparing the pod's volumes -------------------------------------------------------------------------

def prepare_volumes(pod: dict, pod_dir: Path) -> tuple[dict[str, VolumeSource], list[str]]:
    """Every volume of the pod made ready on the host, by name, and the problems of those that
    cannot be; also the ``subPath`` directories the pod's containers mount. Safe to repeat."""
    sources: dict[str, VolumeSource] = {}
    problems: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        try:
            sources[name] = _prepare(volume, pod_dir)
        except _VolumeProblem as exc:
            problems.append(f"volume {name!r}: {exc}")
        except OSError as exc:
            problems.append(f"volume {name!r}: {exc.strerror or exc}")
    if not problems:
        problems += _prepare_sub_paths(pod, sources)
    return sources, problems


class _VolumeProblem(Exception):
    """A volume cannot be made ready; the message says why."""


def _prepare(volume: dict, pod_dir: Path) -> VolumeSource:
    name = volume.get("name", "")
    if not name or "/" in name or name in (".", ".."):
        raise _VolumeProblem("not a valid volume name")
    kind = next((s for s in SOURCES if volume.get(s) is not None), "emptyDir")
    if kind == "emptyDir":
        return _empty_dir(name, volume.get("emptyDir") or {}, pod_dir)
    if kind == "hostPath":
        return _host_path(name, volume["hostPath"])
    raise _VolumeProblem(f"type {kind} is not supported")


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
        options = ["rbind", "ro" if mount.get("readOnly") else "rw"]
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
