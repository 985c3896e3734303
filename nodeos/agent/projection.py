"""ConfigMap, Secret and projected volumes: their files, and writing them atomically.

``payload`` works out the files a volume holds (relative path → bytes and
mode) from its source and the referenced objects, as the kubelet's
configmap, secret and projected volume plugins do: every key (``data`` and,
for ConfigMaps, ``binaryData``) under its own name with ``defaultMode``, or
only the ``items`` listed, each at its ``path`` with its ``mode``. A missing
object empties an ``optional`` volume and is otherwise a problem
(``configmap "x" not found``); a missing item key likewise. Projected
volumes take ``configMap`` and ``secret`` sources; ``downwardAPI``,
``serviceAccountToken`` and ``clusterTrustBundle`` sources are problems.

``write_atomically`` is the kubelet's AtomicWriter, so that a container
reading the volume never sees half of an update::

    <volume>/..2026_11_27_08_00_00.1234/key     the files of this version
    <volume>/..data -> ..2026_11_27_08_00_00.1234
    <volume>/key -> ..data/key                  what the container opens

A new version is written into a new timestamped directory, ``..data`` is
swapped to it by a rename (atomic), then the old directory is removed.
Paths are checked before anything is written: relative, no ``..``, not
starting with ``..`` (which would clash with the writer's own names), so
nothing lands outside the volume whatever a ConfigMap's keys or an item's
path say.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from nodeos.agent.configdata import CONFIG_MAP, SECRET, ConfigObjects, DataProblem, object_data

__all__ = ["DATA_DIR", "FileProjection", "ProjectionProblem", "check_path", "checked", "payload", "write_atomically"]

DATA_DIR = "..data"
_DEFAULT_MODE = 0o644
_MAX_PATH, _MAX_NAME = 4096, 255
_DIR_MODE = 0o755  # the version directory and directories for nested item paths: any container user may read


@dataclass(frozen=True)
class FileProjection:
    """One file of a volume: its content and permission bits."""

    data: bytes
    mode: int


class ProjectionProblem(Exception):
    """A volume's files cannot be worked out or written; the message says why."""


# -- what the volume holds ---------------------------------------------------------------------------------

def payload(kind: str, source: dict[str, Any], objects: ConfigObjects, namespace: str) -> dict[str, FileProjection]:
    """The files of a ``configMap``, ``secret`` or ``projected`` volume source (``kind``), by relative path,
    their paths checked (``checked``)."""
    if kind == "projected":
        files = _projected(source, objects, namespace)
    else:
        plural, name = (CONFIG_MAP, source.get("name")) if kind == "configMap" else (SECRET, source.get("secretName"))
        files = _object_files(plural, str(name or ""), source, objects, namespace, _mode(source.get("defaultMode")))
    checked(files)
    return files


def _projected(source: dict[str, Any], objects: ConfigObjects, namespace: str) -> dict[str, FileProjection]:
    default_mode = _mode(source.get("defaultMode"))
    files: dict[str, FileProjection] = {}
    for projection in source.get("sources") or []:
        projection = projection or {}
        served = [(plural, projection[key]) for key, plural in (("configMap", CONFIG_MAP), ("secret", SECRET))
                  if isinstance(projection.get(key), dict)]
        if not served:
            kinds = ", ".join(sorted(projection)) or "an empty source"
            raise ProjectionProblem(f"projected source {kinds} is not supported")
        plural, ref = served[0]
        files.update(_object_files(plural, str(ref.get("name") or ""), ref, objects, namespace, default_mode))
    return files


def _object_files(plural: str, name: str, ref: dict[str, Any], objects: ConfigObjects, namespace: str,
                  default_mode: int) -> dict[str, FileProjection]:
    optional = bool(ref.get("optional"))
    try:
        data = object_data(objects, plural, name, namespace, optional=optional, binary=True)
    except DataProblem as exc:
        raise ProjectionProblem(str(exc)) from None
    if data is None:
        return {}
    items = ref.get("items") or []
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            what = "configmap references non-existent config key" if plural == CONFIG_MAP else \
                "secret references non-existent secret key"
            raise ProjectionProblem(f"{what}: {key}")
        mode = _mode(item.get("mode")) if item.get("mode") is not None else default_mode
        files[str(item.get("path") or "")] = FileProjection(data[key], mode)
    return files


def _mode(value: Any) -> int:
    if value is None:
        return _DEFAULT_MODE
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o777:
        raise ProjectionProblem(f"mode {value!r} is not between 0 and 0777")
    return value


# -- writing it -----------------------------------------------------------------------------------------------

def checked(files: dict[str, FileProjection]) -> dict[PurePosixPath, FileProjection]:
    """``files`` by checked path (``check_path``), none of them both a file and a directory."""
    by_path = {check_path(path): projection for path, projection in files.items()}
    for path in by_path:
        for parent in path.parents:
            if parent in by_path:
                raise ProjectionProblem(f"invalid path {str(path)!r}: {str(parent)!r} is a file")
    return by_path


def check_path(path: str) -> PurePosixPath:
    """The kubelet's ``validatePath``, a little stricter: relative, no ``..`` element, not starting with
    ``..``, no empty or ``.`` element, no NUL, no name longer than 255 bytes, 4096 in all."""
    parts = path.split("/")
    try:
        path.encode()
    except UnicodeEncodeError:
        raise ProjectionProblem(f"invalid path {path!r}: not valid Unicode") from None
    if not path or path.startswith("/") or path.startswith(".."):
        raise ProjectionProblem(f"invalid path {path!r}: must be relative and may not start with '..'")
    if any(part in ("", ".", "..") for part in parts) or "\0" in path:
        raise ProjectionProblem(f"invalid path {path!r}: may not contain empty, '.' or '..' elements, or NUL")
    if len(path.encode()) > _MAX_PATH or any(len(part.encode()) > _MAX_NAME for part in parts):
        raise ProjectionProblem(f"invalid path {path[:64]!r}...: too long")
    return PurePosixPath(path)


def write_atomically(target: Path, files: dict[str, FileProjection]) -> bool:
    """Make ``target`` hold exactly ``files``, as one atomic swap; False if it already did (nothing written).
    ``target`` must exist. Safe to repeat; runs off the event loop (it is all file work)."""
    by_path = checked(files)
    current = _current_version(target)
    if current is not None and _read_version(target / current) == by_path:
        _link_visible(target, by_path)
        return False
    version = _write_version(target, by_path)
    staged = target / "..data_tmp"
    if os.path.lexists(staged):
        staged.unlink()
    staged.symlink_to(version.name)
    staged.rename(target / DATA_DIR)  # the atomic step: readers see the old version or the new, never a mix
    _link_visible(target, by_path)
    _remove_stale(target, by_path, keep=version.name)
    return True


def _current_version(target: Path) -> str | None:
    try:
        return os.readlink(target / DATA_DIR)
    except OSError:
        return None


def _read_version(directory: Path) -> dict[PurePosixPath, FileProjection] | None:
    """The files of an existing version, to tell whether a rewrite would change anything."""
    found: dict[PurePosixPath, FileProjection] = {}
    try:
        for root, _, names in os.walk(directory):
            for name in names:
                path = Path(root) / name
                found[PurePosixPath(path.relative_to(directory))] = FileProjection(
                    path.read_bytes(), path.stat().st_mode & 0o777)
    except OSError:
        return None
    return found


def _write_version(target: Path, files: dict[PurePosixPath, FileProjection]) -> Path:
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
    version = Path(tempfile.mkdtemp(prefix=f"..{stamp}.", dir=target))
    try:
        os.chmod(version, _DIR_MODE)
        for relative, projection in files.items():
            path = version / relative
            for parent in reversed(relative.parents[:-1]):
                (version / parent).mkdir(mode=_DIR_MODE, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(projection.data)
            os.chmod(path, projection.mode)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    return version


def _link_visible(target: Path, files: dict[PurePosixPath, FileProjection]) -> None:
    """``name -> ..data/name`` for each top-level name of the payload."""
    for top in {path.parts[0] for path in files}:
        link = target / top
        if not os.path.lexists(link):
            link.symlink_to(f"{DATA_DIR}/{top}")


def _remove_stale(target: Path, files: dict[PurePosixPath, FileProjection], *, keep: str) -> None:
    """Old versions, and top-level links to names the new version no longer has."""
    visible = {path.parts[0] for path in files}
    for entry in os.scandir(target):
        if entry.name.startswith(".."):
            if entry.name not in (DATA_DIR, keep) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
        elif entry.is_symlink() and entry.name not in visible:
            os.unlink(entry.path)
