"""Containers: defaults and validation of one container of a PodSpec.

Split from pods.py because containers carry most of a pod's fields (ports,
env, resources, mounts, probes) and are checked the same way in Pods and in
every workload's template.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.model._fields import (
    INT64,
    Causes,
    child,
    default_str,
    default_value,
    dict_items,
    forbidden,
    get_bool,
    get_dict,
    get_dicts,
    get_int,
    get_str,
    get_str_list,
    invalid,
    key,
    not_found,
    required,
)
from nodeos.api.model.quantity import parse_quantity
from nodeos.api.model.validation import (
    is_dns1123_label,
    is_env_var_name,
    is_port_name,
    is_qualified_name,
    validate_enum,
    validate_non_negative,
    validate_port,
    validate_port_num_or_name,
    validate_protocol,
    validate_unique_names,
)

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


# -- defaults

def default_pull_policy(image: str) -> str:
    """Always for ``:latest`` or no tag, as Kubernetes decides it: a moving tag
    must be re-pulled, a pinned tag or digest need not be."""
    if not image:
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def default_container(container: dict[str, Any]) -> None:
    if container.get("imagePullPolicy") in (None, ""):
        image = container.get("image")
        container["imagePullPolicy"] = default_pull_policy(image if isinstance(image, str) else "")
    default_str(container, "terminationMessagePath", "/dev/termination-log")
    default_str(container, "terminationMessagePolicy", "File")
    default_value(container, "resources", {})
    for port in dict_items(container, "ports"):
        default_str(port, "protocol", "TCP")
    for env in dict_items(container, "env"):
        value_from = env.get("valueFrom")
        if isinstance(value_from, dict) and isinstance(value_from.get("fieldRef"), dict):
            default_str(value_from["fieldRef"], "apiVersion", "v1")
    for name in PROBES:
        probe = container.get(name)
        if isinstance(probe, dict):
            _default_probe(probe)


def _default_probe(probe: dict[str, Any]) -> None:
    # int32 fields, not pointers: Kubernetes defaults them on 0 as well
    for name, value in (("timeoutSeconds", 1), ("periodSeconds", 10),
                        ("successThreshold", 1), ("failureThreshold", 3)):
        if probe.get(name) in (None, 0):
            probe[name] = value
    http = probe.get("httpGet")
    if isinstance(http, dict):
        default_str(http, "path", "/")
        default_str(http, "scheme", "HTTP")


def default_requests_from_limits(container: dict[str, Any]) -> None:
    """A pod (not a template) asks for what it limits itself to, unless it says otherwise."""
    resources = container.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    if resources.get("requests") is None:
        resources["requests"] = {}
    if isinstance(resources["requests"], dict):
        for name, value in resources["limits"].items():
            resources["requests"].setdefault(name, value)


# -- validation

def validate_containers(spec: dict[str, Any], path: str, volume_names: set[str]) -> Causes:
    """Both container lists of a PodSpec; names are unique across the two."""
    errs: Causes = []
    names: list[tuple[str, str]] = []
    containers = list(get_dicts(spec, "containers", path, errs))
    if not containers and not errs:
        errs.append(required(child(path, "containers")))
    init_containers = list(get_dicts(spec, "initContainers", path, errs))
    # regular containers first, so a clash is reported on the init container
    for init, items in ((False, containers), (True, init_containers)):
        for c_path, container in items:
            errs += validate_container(container, c_path, volume_names, init=init)
            name = container.get("name")
            if isinstance(name, str) and name:
                names.append((child(c_path, "name"), name))
    return errs + validate_unique_names(names)


def validate_container(c: dict[str, Any], path: str, volume_names: set[str], *, init: bool) -> Causes:
    errs: Causes = []
    name = get_str(c, "name", path, errs)
    if not name:
        errs.append(required(child(path, "name")))
    errs += [invalid(child(path, "name"), name, m) for m in is_dns1123_label(name)] if name else []
    image = get_str(c, "image", path, errs)
    if not image:
        errs.append(required(child(path, "image")))
    elif image != image.strip():
        errs.append(invalid(child(path, "image"), image, "must not have leading or trailing whitespace"))
    for field in ("command", "args"):
        get_str_list(c, field, path, errs)
    for field in ("workingDir", "terminationMessagePath"):
        get_str(c, field, path, errs)
    for field in ("stdin", "stdinOnce", "tty"):
        get_bool(c, field, path, errs)
    errs += validate_enum(c.get("imagePullPolicy"), child(path, "imagePullPolicy"), PULL_POLICIES,
                          required_=True)
    errs += validate_enum(c.get("terminationMessagePolicy"), child(path, "terminationMessagePolicy"),
                          TERMINATION_MESSAGE_POLICIES, required_=True)
    errs += _validate_restart_policy(c, path, init)
    errs += _validate_ports(c, path)
    errs += _validate_env(c, path)
    errs += validate_resources(get_dict(c, "resources", path, errs), child(path, "resources"))
    errs += _validate_mounts(c, path, volume_names)
    for probe_name in PROBES:
        probe = get_dict(c, probe_name, path, errs)
        if probe and init and c.get("restartPolicy") != "Always":
            errs.append(forbidden(child(path, probe_name),
                                  "may not be set for init containers without restartPolicy=Always"))
        elif probe:
            errs += _validate_probe(probe, child(path, probe_name), liveness=probe_name != "readinessProbe")
    get_dict(c, "lifecycle", path, errs)
    get_dict(c, "securityContext", path, errs)
    return errs


def _validate_restart_policy(c: dict[str, Any], path: str, init: bool) -> Causes:
    policy = c.get("restartPolicy")
    if policy is None:
        return []
    if not init:
        return [forbidden(child(path, "restartPolicy"), "may not be set for non-init containers")]
    return validate_enum(policy, child(path, "restartPolicy"), ("Always",))


def _validate_ports(c: dict[str, Any], path: str) -> Causes:
    errs: Causes = []
    names: list[tuple[str, str]] = []
    for p_path, port in get_dicts(c, "ports", path, errs):
        errs += validate_port(port.get("containerPort"), child(p_path, "containerPort"))
        errs += validate_port(port.get("hostPort"), child(p_path, "hostPort"), required_=False)
        errs += validate_protocol(port.get("protocol"), child(p_path, "protocol"))
        get_str(port, "hostIP", p_path, errs)
        name = get_str(port, "name", p_path, errs)
        if name:
            errs += [invalid(child(p_path, "name"), name, m) for m in is_port_name(name)]
            names.append((child(p_path, "name"), name))
    return errs + validate_unique_names(names)


def _validate_env(c: dict[str, Any], path: str) -> Causes:
    errs: Causes = []
    for e_path, env in get_dicts(c, "env", path, errs):
        name = get_str(env, "name", e_path, errs)
        if not name:
            errs.append(required(child(e_path, "name")))
        errs += [invalid(child(e_path, "name"), name, m) for m in is_env_var_name(name)] if name else []
        value = get_str(env, "value", e_path, errs)
        value_from = get_dict(env, "valueFrom", e_path, errs)
        if "valueFrom" in env and env["valueFrom"] is not None:
            errs += _validate_value_from(value_from, child(e_path, "valueFrom"), bool(value))
    for f_path, source in get_dicts(c, "envFrom", path, errs):
        prefix = get_str(source, "prefix", f_path, errs)
        errs += [invalid(child(f_path, "prefix"), prefix, m) for m in is_env_var_name(prefix)] if prefix else []
        refs = [r for r in ("configMapRef", "secretRef") if get_dict(source, r, f_path, errs)]
        if len(refs) != 1:
            errs.append(invalid(f_path, "", "must specify one of: `configMapRef` or `secretRef`"))
    return errs


def _validate_value_from(value_from: dict[str, Any], path: str, has_value: bool) -> Causes:
    errs: Causes = []
    sources = [s for s in _ENV_SOURCES if get_dict(value_from, s, path, errs)]
    if not sources:
        errs.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                      "`configMapKeyRef` or `secretKeyRef`"))
    elif len(sources) > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    if has_value and sources:
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    required_keys = {"fieldRef": "fieldPath", "resourceFieldRef": "resource",
                     "configMapKeyRef": "key", "secretKeyRef": "key"}
    for source in sources:
        s_path = child(path, source)
        if not get_str(value_from[source], required_keys[source], s_path, errs):
            errs.append(required(child(s_path, required_keys[source])))
    return errs


def validate_resources(resources: dict[str, Any], path: str) -> Causes:
    """Names and quantities valid, and requests not above limits."""
    errs: Causes = []
    parsed: dict[str, dict[str, Any]] = {}
    for field in ("limits", "requests"):
        f_path = child(path, field)
        parsed[field] = {}
        for name, value in get_dict(resources, field, path, errs).items():
            q_path = key(f_path, name)
            errs += _validate_resource_name(name, q_path)
            try:
                quantity = parse_quantity(value)
            except ValueError as exc:
                errs.append(invalid(q_path, value, str(exc)))
                continue
            if quantity < 0:
                errs.append(invalid(q_path, value, "must be greater than or equal to 0"))
            parsed[field][name] = (quantity, value)
    for name, (request, shown) in parsed["requests"].items():
        if name in parsed["limits"]:
            limit, limit_shown = parsed["limits"][name]
            if request > limit:
                errs.append(invalid(child(path, "requests"), str(shown),
                                    f"must be less than or equal to {name} limit of {limit_shown}"))
    return errs


def _validate_resource_name(name: str, path: str) -> Causes:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if not errs and "/" not in name and name not in STANDARD_RESOURCES and not name.startswith("hugepages-"):
        errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def _validate_mounts(c: dict[str, Any], path: str, volume_names: set[str]) -> Causes:
    errs: Causes = []
    mount_paths: set[str] = set()
    for m_path, mount in get_dicts(c, "volumeMounts", path, errs):
        name = get_str(mount, "name", m_path, errs)
        if not name:
            errs.append(required(child(m_path, "name")))
        elif name not in volume_names:
            errs.append(not_found(child(m_path, "name"), name))
        mount_path = get_str(mount, "mountPath", m_path, errs)
        if not mount_path:
            errs.append(required(child(m_path, "mountPath")))
        elif mount_path in mount_paths:
            errs.append(invalid(child(m_path, "mountPath"), mount_path, "must be unique"))
        mount_paths.add(mount_path)
        sub_path = get_str(mount, "subPath", m_path, errs)
        if sub_path.startswith("/"):
            errs.append(invalid(child(m_path, "subPath"), sub_path, "must be a relative path"))
        elif ".." in sub_path.split("/"):
            errs.append(invalid(child(m_path, "subPath"), sub_path, "must not contain '..'"))
        get_bool(mount, "readOnly", m_path, errs)
    return errs


def _validate_probe(probe: dict[str, Any], path: str, *, liveness: bool) -> Causes:
    errs: Causes = []
    handlers = [h for h in _PROBE_HANDLERS if get_dict(probe, h, path, errs) or probe.get(h) == {}]
    if not handlers:
        errs.append(required(path, "must specify a handler type"))
    for extra in handlers[1:]:
        errs.append(forbidden(child(path, extra), "may not specify more than 1 handler type"))
    for handler in ("httpGet", "tcpSocket"):
        if handler in handlers:
            errs += validate_port_num_or_name(probe[handler].get("port"), child(path, f"{handler}.port"))
    if "httpGet" in handlers:
        errs += validate_enum(probe["httpGet"].get("scheme"), child(path, "httpGet.scheme"), ("HTTP", "HTTPS"))
    if "exec" in handlers:
        get_str_list(probe["exec"], "command", child(path, "exec"), errs)
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                  "successThreshold", "failureThreshold"):
        errs += validate_non_negative(probe.get(field), child(path, field))
    if liveness and probe.get("successThreshold") not in (None, 1):
        errs.append(invalid(child(path, "successThreshold"), probe["successThreshold"], "must be 1"))
    get_int(probe, "terminationGracePeriodSeconds", path, errs, INT64)
    return errs
