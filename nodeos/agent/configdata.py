"""The ConfigMaps and Secrets a pod consumes: read from the API, and their data as bytes.

The agent reads each object a pod references (``nodeos.api.model.references``)
with a GET by name in the pod's namespace, never a list or a watch: node
restriction lets a node read exactly the Secrets and ConfigMaps of the pods
bound to it, and no more. The result is a plain mapping, ``(plural, name)``
to the object or None when it does not exist, which the pure parts
(``envvars``, ``projection``) take as it is; an object that could not be read
(API down, forbidden) is *absent* from the mapping, so that those parts say
so instead of taking it for missing (which an ``optional`` reference would
quietly accept).

Each pod worker reads again before each container it creates and on each
volume refresh: level-triggered, so a ConfigMap created after the pod is
picked up on the next try, with no cache to go stale.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.api.model.references import CONFIG_MAP, SECRET, references
from nodeos.client import ApiClient
from nodeos.errors import ApiError, NodeosError

__all__ = ["CONFIG_MAP", "SECRET", "ConfigObjects", "DataProblem", "Getter", "api_getter", "data_bytes",
           "fetch_referenced", "kind_of", "missing_message", "object_data"]

log = logging.getLogger(__name__)

#: ``(plural, name)`` → the object, or None when it does not exist; absent when it could not be read.
ConfigObjects = Mapping[tuple[str, str], dict[str, Any] | None]
#: ``(plural, namespace, name)`` → the object, or None when the API says 404.
Getter = Callable[[str, str, str], Awaitable[dict[str, Any] | None]]

_KINDS = {CONFIG_MAP: "ConfigMap", SECRET: "Secret"}


def kind_of(plural: str) -> str:
    """``configmaps`` → ``ConfigMap``, ``secrets`` → ``Secret``."""
    return _KINDS[plural]


def missing_message(plural: str, name: str) -> str:
    """The kubelet's words for a referenced object that does not exist."""
    return f'{kind_of(plural).lower()} "{name}" not found'


def api_getter(api: ApiClient) -> Getter:
    """A ``Getter`` on the API with the agent's own credential."""
    resources = {plural: by_plural("", "v1", plural) for plural in _KINDS}

    async def get(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await api.get(resources[plural], name, namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    return get


async def fetch_referenced(get: Getter, pod: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any] | None]:
    """Every ConfigMap and Secret ``pod`` references, read now; those that could not be read are left out
    (and logged), see the module docstring. Image pull secrets come along; nothing reads them yet."""
    namespace = pod["metadata"]["namespace"]
    objects: dict[tuple[str, str], dict[str, Any] | None] = {}
    for key in dict.fromkeys(references(pod)):
        try:
            objects[key] = await get(key[0], namespace, key[1])
        except NodeosError as exc:
            log.info("pod %s/%s: reading %s %s: %s", namespace, pod["metadata"].get("name"), kind_of(key[0]),
                     key[1], exc)
    return objects


class DataProblem(Exception):
    """An object's data cannot be used; the message says why."""


def object_data(objects: ConfigObjects, plural: str, name: str, namespace: str, *, optional: bool,
                binary: bool) -> dict[str, bytes] | None:
    """The data (``data_bytes``) of a referenced object; None when it does not exist and the reference is
    ``optional``. DataProblem, in the kubelet's words, when it could not be read, does not exist, or its data
    cannot be used — what the environment and the volumes both say."""
    if (plural, name) not in objects:
        raise DataProblem(f"couldn't get {kind_of(plural).lower()} {namespace}/{name}")
    obj = objects[(plural, name)]
    if obj is None:
        if optional:
            return None
        raise DataProblem(missing_message(plural, name))
    return data_bytes(plural, obj, namespace=namespace, binary=binary)


def data_bytes(plural: str, obj: dict[str, Any], *, namespace: str, binary: bool) -> dict[str, bytes]:
    """An object's data, key → bytes: a Secret's ``data`` is base64; a ConfigMap's ``data`` is text, and
    its ``binaryData`` (base64) joins it when ``binary`` (volumes; environment variables take text only)."""
    where = f"{kind_of(plural)} {namespace}/{(obj.get('metadata') or {}).get('name', '')}"
    out: dict[str, bytes] = {}
    if plural == CONFIG_MAP:
        for key, value in _string_map(obj.get("data"), where).items():
            try:
                out[key] = value.encode()
            except UnicodeEncodeError:
                raise DataProblem(f"key {key} in {where} is not valid Unicode") from None
    encoded = obj.get("data") if plural == SECRET else obj.get("binaryData") if binary else None
    for key, value in _string_map(encoded, where).items():
        try:
            out[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise DataProblem(f"key {key} in {where} is not valid base64") from None
    return out


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DataProblem(f"the data of {where} is not a map of strings")
    return value
