"""Field selectors: ``a=b,c!=d`` over the few fields Kubernetes indexes per kind.

Field values are rendered as Kubernetes' field sets render them: an absent
field is "" (so ``spec.nodeName=`` selects unscheduled pods) and booleans
are ``true``/``false``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.errors import ApiError


def _path(*keys: str) -> Callable[[Mapping[str, Any]], str]:
    """A getter for a nested field, rendered as Kubernetes' field sets do ("" when absent)."""
    def get(obj: Mapping[str, Any]) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return get


_COMMON = {"metadata.name": _path("metadata", "name"), "metadata.namespace": _path("metadata", "namespace")}
_INVOLVED = {f"involvedObject.{f}": _path("involvedObject", f)
             for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}

FIELDS: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "Pod": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: _path("spec", "hostNetwork")(o) or "false",
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "Event": {
        **_INVOLVED,
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": lambda o: _path("source", "component")(o) or _path("reportingComponent")(o),
        "type": _path("type"),
    },
    "Node": {"spec.unschedulable": lambda o: _path("spec", "unschedulable")(o) or "false"},
    "Namespace": {"status.phase": _path("status", "phase")},
    "ReplicationController": {"status.replicas": _path("status", "replicas")},
    "ReplicaSet": {"status.replicas": _path("status", "replicas")},
    "Service": {"spec.clusterIP": _path("spec", "clusterIP"), "spec.type": _path("spec", "type")},
}


@dataclass(frozen=True)
class FieldTerm:
    field: str
    op: str  # "=", "==" or "!="
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{self.op}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...]
    getters: Mapping[str, Callable[[Mapping[str, Any]], str]]

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not isinstance(obj, Mapping):
            return False
        for term in self.terms:
            equal = self.getters[term.field](obj) == term.value
            if equal == (term.op == "!="):
                return False
        return True

    def required_value(self, field: str) -> str | None:
        """The value an equality term pins ``field`` to, if any (for indexed fast paths)."""
        for term in self.terms:
            if term.field == field and term.op != "!=":
                return term.value
        return None

    @property
    def exact_name(self) -> str | None:
        """The name pinned by ``metadata.name=``: lets list/watch read one key instead of all."""
        return self.required_value("metadata.name")

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def supported_fields(resource: Resource) -> list[str]:
    """Field names ``resource`` can be selected by, as an error message lists them."""
    return [*_COMMON, *FIELDS.get(resource.kind, {})]


def parse_field_selector(text: str, resource: Resource) -> FieldSelector:
    """Parse ``a=b,c!=d`` (``\\,`` ``\\=`` ``\\\\`` escape values) for ``resource``'s fields."""
    if not isinstance(text, str):
        raise ApiError.bad_request("field selector must be a string")
    getters = {**_COMMON, **FIELDS.get(resource.kind, {})}
    terms: list[FieldTerm] = []
    for part in _split_unescaped(text):
        if not part.strip():
            continue
        field, op, raw = _split_term(part, text)
        if field not in getters:
            known = ", ".join(f'"{f}"' for f in getters)
            raise ApiError.bad_request(f'"{field}" is not a known field selector: only {known}')
        terms.append(FieldTerm(field, op, _unescape(raw.strip(), text)))
    return FieldSelector(tuple(terms), getters)


def _split_unescaped(text: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _split_term(part: str, text: str) -> tuple[str, str, str]:
    for i in range(len(part)):
        for op in ("!=", "==", "="):
            if part.startswith(op, i):
                return part[:i].strip(), op, part[i + len(op):]
    raise ApiError.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")


def _unescape(value: str, text: str) -> str:
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise ApiError.bad_request(f"invalid field selector: '{text}': invalid escape sequence '\\{ch}'")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise ApiError.bad_request(f"invalid field selector: '{text}': unescaped '{ch}' in value")
        else:
            out.append(ch)
    if escaped:
        raise ApiError.bad_request(f"invalid field selector: '{text}': trailing backslash")
    return "".join(out)
