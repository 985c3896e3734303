"""A container's environment, worked out as the kubelet does it.

Order and precedence follow the kubelet (``makeEnvironmentVariables``): the
Service variables come first, then the container's ``envFrom`` sources in
order, then its ``env`` in order, each later definition replacing an earlier
one; a ``value`` is ``$(VAR)``-expanded against what is defined so far
(Service variables included), a ``valueFrom`` is taken as it is. Which
Services count: those of the pod's namespace (unless ``enableServiceLinks``
is false) and always ``kubernetes`` in ``default``.

ConfigMaps and Secrets come in as ``objects`` (``nodeos.agent.configdata``),
read by the caller beforehand, so that this stays pure. A ConfigMap's
``data`` is taken as it is (not ``binaryData``), a Secret's is base64-decoded
and must be UTF-8. A missing object or key is left out when the reference is
``optional``, as the kubelet does, and is otherwise a problem in the
kubelet's words (``configmap "x" not found``, ``couldn't find key k in
ConfigMap ns/x``); ``envFrom`` keys that are not valid variable names are
skipped (``invalid_env_from_keys`` says which, for the kubelet's warning).
Problems are strings; the caller shows them as the container's waiting
reason (CreateContainerConfigError) and as events, and tries again later.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from nodeos.agent.configdata import CONFIG_MAP, SECRET, ConfigObjects, DataProblem, kind_of, object_data
from nodeos.api.model.quantity import parse_quantity

__all__ = ["container_env", "expand", "invalid_env_from_keys", "service_env"]

_MASTER_SERVICE = ("default", "kubernetes")  # its variables reach every pod, service links or not
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")  # the API's IsEnvVarName
_REFS = {"configMapRef": CONFIG_MAP, "secretRef": SECRET, "configMapKeyRef": CONFIG_MAP, "secretKeyRef": SECRET}


# -- $(VAR) expansion ------------------------------------------------------------------------------------

def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` → its value if defined, else left as written; ``$$`` → ``$``, so ``$$(VAR)`` is the
    literal ``$(VAR)``; a ``$`` before anything else stays. The kubelet's third_party/forked/golang/expansion,
    which users' manifests depend on to the letter (an unclosed ``$(`` stays, ``$()`` stays)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char != "$" or i + 1 == n:
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2:close]
                out.append(env.get(name, f"$({name})"))
                i = close + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


# -- Service variables -----------------------------------------------------------------------------------

def service_env(services: Iterable[dict]) -> dict[str, str]:
    """The variables Kubernetes injects for ``services`` (all of them: choosing is the caller's part):
    ``<NAME>_SERVICE_HOST``/``_SERVICE_PORT[_<PORTNAME>]`` and the Docker-links set ``<NAME>_PORT…``.
    Services without a cluster IP (headless, ExternalName) have none."""
    env: dict[str, str] = {}
    for service in sorted(services, key=lambda s: s.get("metadata", {}).get("name", "")):
        spec = service.get("spec") or {}
        ip, ports = spec.get("clusterIP"), spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = _env_name(service["metadata"]["name"])
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(port["port"])
        env.update(_link_env(prefix, ip, ports))
    return env


def _link_env(prefix: str, ip: str, ports: list[dict]) -> dict[str, str]:
    """Docker links' variables, which old images still read."""
    env: dict[str, str] = {}
    host = f"[{ip}]" if ":" in ip else ip
    for i, port in enumerate(ports):
        protocol = port.get("protocol") or "TCP"
        url = f"{protocol.lower()}://{host}:{port['port']}"
        if i == 0:
            env[f"{prefix}_PORT"] = url
        name = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        env[name] = url
        env[f"{name}_PROTO"] = protocol.lower()
        env[f"{name}_PORT"] = str(port["port"])
        env[f"{name}_ADDR"] = ip
    return env


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _visible_services(pod: dict, services: Iterable[dict]) -> list[dict]:
    """The Services whose variables the pod gets; the pod's own namespace wins a name clash with
    ``default/kubernetes``, as in the kubelet."""
    namespace = pod["metadata"]["namespace"]
    links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
    chosen: dict[str, dict] = {}
    for service in services:
        meta = service.get("metadata") or {}
        name, service_ns = meta.get("name", ""), meta.get("namespace", "")
        if service_ns == namespace and links:
            chosen[name] = service
        elif (service_ns, name) == _MASTER_SERVICE:
            chosen.setdefault(name, service)
    return list(chosen.values())


# -- the container's environment -------------------------------------------------------------------------

def container_env(pod: dict, container: dict, *, pod_ip: str | None, host_ip: str, node_name: str,
                  services: Iterable[dict], allocatable: Mapping[str, Any] | None = None,
                  objects: ConfigObjects | None = None) -> tuple[dict[str, str], list[str]]:
    """The container's environment and its problems.

    ``services``: the Services of the pod's namespace and of ``default`` (others are ignored).
    ``allocatable``: the node's allocatable resources, which ``resourceFieldRef`` reports for a limit
    the container does not set (as the kubelet does); without it such a reference is a problem.
    ``objects``: the ConfigMaps and Secrets the pod references (``configdata.fetch_referenced``)."""
    env = service_env(_visible_services(pod, services))
    problems: list[str] = []
    data = _ObjectData(pod["metadata"]["namespace"], objects or {})
    fields = _FieldValues(pod, pod_ip=pod_ip, host_ip=host_ip, node_name=node_name)
    for source in container.get("envFrom") or []:
        try:
            env.update((key, value) for key, value in _env_from(source, data) if _ENV_NAME.fullmatch(key))
        except _Unresolved as exc:
            problems.append(str(exc))
    for var in container.get("env") or []:
        name = var["name"]
        value_from = var.get("valueFrom")
        if var.get("value") or not value_from:
            env[name] = expand(var.get("value") or "", env)
            continue
        try:
            value = _value_from(value_from, pod, container, fields, allocatable or {}, data)
        except _Unresolved as exc:
            problems.append(f"env {name!r}: {exc}" if exc.named else str(exc))
            continue
        if value is not None:
            env[name] = value
    return env, list(dict.fromkeys(problems))


def invalid_env_from_keys(pod: dict, container: dict, objects: ConfigObjects) -> list[str]:
    """The kubelet's InvalidEnvironmentVariableNames warnings: for each ``envFrom`` source, the keys
    skipped because (with the prefix) they are not valid variable names. Sources with problems say nothing."""
    data = _ObjectData(pod["metadata"]["namespace"], objects)
    warnings = []
    for source in container.get("envFrom") or []:
        try:
            invalid = [key for key, _ in _env_from(source, data) if not _ENV_NAME.fullmatch(key)]
        except _Unresolved:
            continue
        if invalid:
            ref = "configMapRef" if "configMapRef" in source else "secretRef"
            kind = "configMap" if ref == "configMapRef" else "secret"
            warnings.append(f"Keys [{', '.join(invalid)}] from the EnvFrom {kind} {data.namespace}/"
                            f"{source[ref].get('name', '')} were skipped since they are considered invalid "
                            "environment variable names.")
    return warnings


class _Unresolved(Exception):
    """A variable's value cannot be worked out; the message says why. ``named``: the caller puts the
    variable's name first (the kubelet's ConfigMap and Secret messages stand alone)."""

    def __init__(self, message: str, *, named: bool = True) -> None:
        super().__init__(message)
        self.named = named


class _ObjectData:
    """The referenced ConfigMaps' and Secrets' data as text, with the kubelet's errors."""

    def __init__(self, namespace: str, objects: ConfigObjects) -> None:
        self.namespace, self._objects = namespace, objects

    def data(self, plural: str, name: str, *, optional: bool) -> dict[str, str] | None:
        """The object's data; None when it does not exist and may not (``optional``)."""
        try:
            raw = object_data(self._objects, plural, name, self.namespace, optional=optional, binary=False)
            return None if raw is None else {key: value.decode() for key, value in raw.items()}
        except DataProblem as exc:
            raise _Unresolved(str(exc), named=False) from None
        except UnicodeDecodeError:
            raise _Unresolved(f"{kind_of(plural)} {self.namespace}/{name} has data that is not UTF-8 text",
                              named=False) from None

    def value(self, ref_name: str, ref: dict) -> str | None:
        """A ``configMapKeyRef``/``secretKeyRef``'s value; None to leave the variable out."""
        plural, name, key = _REFS[ref_name], ref.get("name", ""), ref.get("key", "")
        optional = bool(ref.get("optional"))
        data = self.data(plural, name, optional=optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise _Unresolved(f"couldn't find key {key} in {kind_of(plural)} {self.namespace}/{name}", named=False)
        return data[key]


def _env_from(source: dict, data: _ObjectData) -> Iterator[tuple[str, str]]:
    """An ``envFrom`` source's variables, prefixed, in key order (the kubelet ranges over a Go map;
    sorted is at least stable). Names are not checked here."""
    for ref_name in ("configMapRef", "secretRef"):
        ref = source.get(ref_name)
        if isinstance(ref, dict):
            values = data.data(_REFS[ref_name], ref.get("name", ""), optional=bool(ref.get("optional")))
            prefix = source.get("prefix") or ""
            for key, value in sorted((values or {}).items()):
                yield prefix + key, value
            return


def _value_from(value_from: dict, pod: dict, container: dict, fields: _FieldValues,
                allocatable: Mapping[str, Any], data: _ObjectData) -> str | None:
    """The value of a ``valueFrom``; None to leave the variable out (an optional source)."""
    if "fieldRef" in value_from:
        ref = value_from["fieldRef"]
        if ref.get("apiVersion", "v1") != "v1":
            raise _Unresolved(f"fieldRef apiVersion {ref['apiVersion']!r} is not supported")
        return fields.value(ref.get("fieldPath", ""))
    if "resourceFieldRef" in value_from:
        return _resource_value(value_from["resourceFieldRef"], pod, container, allocatable)
    for ref_name in ("configMapKeyRef", "secretKeyRef"):
        if isinstance(value_from.get(ref_name), dict):
            return data.value(ref_name, value_from[ref_name])
    raise _Unresolved("valueFrom has no source nodeos knows")


class _FieldValues:
    """The downward API's fields for environment variables (``fieldRef.fieldPath``)."""

    def __init__(self, pod: dict, *, pod_ip: str | None, host_ip: str, node_name: str) -> None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        self._meta = meta
        self._simple = {
            "metadata.name": meta.get("name", ""),
            "metadata.namespace": meta.get("namespace", ""),
            "metadata.uid": meta.get("uid", ""),
            "spec.nodeName": spec.get("nodeName") or node_name,
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": pod_ip or "",
            "status.podIPs": pod_ip or "",  # one address family for now
            "status.hostIP": host_ip,
            "status.hostIPs": host_ip,
        }

    def value(self, path: str) -> str:
        if path in self._simple:
            return self._simple[path]
        for field in ("labels", "annotations"):
            prefix = f"metadata.{field}['"
            if path.startswith(prefix) and path.endswith("']") and len(path) > len(prefix) + 1:
                return (self._meta.get(field) or {}).get(path[len(prefix):-2], "")
        raise _Unresolved(f"fieldRef {path!r} is not supported")


def _resource_value(ref: dict, pod: dict, container: dict, allocatable: Mapping[str, Any]) -> str:
    """``resourceFieldRef``: the quantity divided by ``divisor``, rounded up, as an integer."""
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise _Unresolved(f"resourceFieldRef {resource!r} is not supported")
    target = _named_container(pod, ref.get("containerName")) or container
    value = ((target.get("resources") or {}).get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = allocatable.get(name)
        if value is None:
            raise _Unresolved(f"resourceFieldRef {resource!r}: no limit set and the node's allocatable is unknown")
    try:
        quantity = parse_quantity(value if value is not None else 0)
        divisor = parse_quantity(ref.get("divisor") or 0) or Decimal(1)
    except ValueError as exc:
        raise _Unresolved(f"resourceFieldRef {resource!r}: {exc}") from None
    if name == "cpu":  # whole millicores first, as resource.Quantity.MilliValue() rounds
        return str(math.ceil(Decimal(math.ceil(quantity * 1000)) / math.ceil(divisor * 1000)))
    return str(math.ceil(Decimal(math.ceil(quantity)) / math.ceil(divisor)))


def _named_container(pod: dict, name: str | None) -> dict | None:
    if not name:
        return None
    spec = pod.get("spec") or {}
    for candidate in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if candidate.get("name") == name:
            return candidate
    raise _Unresolved(f"resourceFieldRef: no container named {name!r}")
