"""Pod volumes: exactly one source each, the sources nodeos can run checked
in depth, the others only for shape."""

from __future__ import annotations

from typing import Any

from nodeos.api.model._fields import (
    Causes,
    child,
    default_value,
    forbidden,
    get_dict,
    get_dicts,
    get_int,
    get_str,
    invalid,
    required,
)
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.validation import is_dns1123_label, validate_enum, validate_unique_names

SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")
EMPTY_DIR_MEDIA = ("", "Memory", "HugePages")
_MODED = ("configMap", "secret", "projected", "downwardAPI")


def default_volume(volume: dict[str, Any]) -> None:
    """A volume without a source is scratch space, as in Kubernetes."""
    if all(volume.get(s) is None for s in SOURCES):
        volume["emptyDir"] = {}
    for source in _MODED:
        if isinstance(volume.get(source), dict):
            default_value(volume[source], "defaultMode", 0o644)


def validate_volumes(spec: dict[str, Any], path: str) -> tuple[Causes, set[str]]:
    """Causes, and the names volume mounts may refer to."""
    errs: Causes = []
    names: list[tuple[str, str]] = []
    for v_path, volume in get_dicts(spec, "volumes", path, errs):
        name = get_str(volume, "name", v_path, errs)
        if not name:
            errs.append(required(child(v_path, "name")))
        else:
            errs += [invalid(child(v_path, "name"), name, m) for m in is_dns1123_label(name)]
            names.append((child(v_path, "name"), name))
        errs += _validate_source(volume, v_path)
    return errs + validate_unique_names(names), {name for _, name in names}


def _validate_source(volume: dict[str, Any], path: str) -> Causes:
    errs: Causes = []
    present = [s for s in SOURCES if volume.get(s) is not None]
    if not present:
        return [required(path, "must specify a volume type")]
    for extra in present[1:]:
        errs.append(forbidden(child(path, extra), "may not specify more than 1 volume type"))
    source = present[0]
    s_path = child(path, source)
    body = get_dict(volume, source, path, errs)
    if source == "hostPath":
        if not get_str(body, "path", s_path, errs):
            errs.append(required(child(s_path, "path")))
        errs += validate_enum(body.get("type"), child(s_path, "type"), HOST_PATH_TYPES)
    elif source == "emptyDir":
        errs += validate_enum(body.get("medium"), child(s_path, "medium"), EMPTY_DIR_MEDIA)
        if body.get("sizeLimit") is not None:
            try:
                parse_quantity(body["sizeLimit"])
            except ValueError as exc:
                errs.append(invalid(child(s_path, "sizeLimit"), body["sizeLimit"], str(exc)))
    elif source in ("configMap", "secret", "persistentVolumeClaim"):
        field = {"configMap": "name", "secret": "secretName", "persistentVolumeClaim": "claimName"}[source]
        if not get_str(body, field, s_path, errs):
            errs.append(required(child(s_path, field)))
    if source in _MODED:
        mode = get_int(body, "defaultMode", s_path, errs)
        if mode is not None and not 0 <= mode <= 0o777:
            errs.append(invalid(child(s_path, "defaultMode"), mode,
                                "must be a number between 0 and 0777 (octal), both inclusive"))
    return errs
