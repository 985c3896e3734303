"""Services and Endpoints.

Cluster IPs and node ports are allocated by the API server, not here: these
defaults only fill what Kubernetes' defaulting fills, and an empty
``clusterIP`` on update is left for the server to carry over from the stored
object, as Kubernetes does.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.model._fields import (
    Causes,
    child,
    default_str,
    default_value,
    dict_items,
    duplicate,
    ensure_dict,
    forbidden,
    get_bool,
    get_dict,
    get_dicts,
    get_int,
    get_list,
    get_str,
    index,
    invalid,
    is_int,
    required,
)
from nodeos.api.model.validation import (
    IP_MSG,
    is_dns1123_label,
    is_dns1123_subdomain,
    parse_ip,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_enum,
    validate_ip,
    validate_labels,
    validate_port,
    validate_port_num_or_name,
    validate_protocol,
)

TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
SESSION_AFFINITIES = ("None", "ClientIP")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
IP_FAMILIES = ("IPv4", "IPv6")
NODE_PORT_RANGE = (30000, 32767)
_EXTERNAL = ("NodePort", "LoadBalancer")


def default_service(obj: dict[str, Any]) -> None:
    spec = ensure_dict(obj, "spec")
    if spec is None:
        return
    default_str(spec, "type", "ClusterIP")
    default_str(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        config = ensure_dict(spec, "sessionAffinityConfig")
        client_ip = ensure_dict(config, "clientIP")
        default_value(client_ip, "timeoutSeconds", 10800)
    for port in dict_items(spec, "ports"):
        default_str(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec.get("type")
    if kind in _EXTERNAL:
        default_str(spec, "externalTrafficPolicy", "Cluster")
    if kind in ("ClusterIP", *_EXTERNAL):
        default_str(spec, "internalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        default_value(spec, "allocateLoadBalancerNodePorts", True)
    if kind != "ExternalName":
        default_str(spec, "ipFamilyPolicy", "SingleStack")
        default_value(spec, "ipFamilies", ["IPv4"])
        cluster_ip, cluster_ips = spec.get("clusterIP"), spec.get("clusterIPs")
        if isinstance(cluster_ip, str) and cluster_ip and cluster_ips is None:
            spec["clusterIPs"] = [cluster_ip]
        elif not cluster_ip and isinstance(cluster_ips, list) and cluster_ips:
            spec["clusterIP"] = cluster_ips[0]


def validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    spec = get_dict(obj, "spec", "", errs)
    kind = spec.get("type")
    errs += validate_enum(kind, "spec.type", TYPES, required_=True)
    cluster_ip = get_str(spec, "clusterIP", "spec", errs)
    headless = cluster_ip == "None"
    if kind == "ExternalName":
        errs += _validate_external_name(spec)
    elif cluster_ip and not headless and not parse_ip(cluster_ip):
        errs.append(invalid("spec.clusterIP", cluster_ip, IP_MSG))
    for i, ip in enumerate(get_list(spec, "clusterIPs", "spec", errs)):
        if i == 0 and cluster_ip and ip != cluster_ip:
            errs.append(invalid("spec.clusterIPs[0]", ip, "must match `clusterIP` when set"))
        elif ip != "None" and not (i == 0 and ip == cluster_ip):
            errs += validate_ip(ip, index("spec.clusterIPs", i))

    ports = list(get_dicts(spec, "ports", "spec", errs))
    if spec.get("ports") in (None, []) and not headless and kind != "ExternalName":
        errs.append(required("spec.ports"))
    errs += _validate_ports(ports, kind)

    errs += validate_labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    errs += validate_enum(affinity, "spec.sessionAffinity", SESSION_AFFINITIES, required_=True)
    config = get_dict(spec, "sessionAffinityConfig", "spec", errs)
    if affinity == "ClientIP":
        timeout = get_int(get_dict(config, "clientIP", "spec.sessionAffinityConfig", errs), "timeoutSeconds",
                          "spec.sessionAffinityConfig.clientIP", errs)
        if timeout is not None and not 0 < timeout <= 86400:
            errs.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                                "must be greater than 0 and less than 86400"))
    elif config:
        errs.append(invalid("spec.sessionAffinityConfig", config,
                            "must not be set when session affinity is None"))

    errs += _validate_policies(spec, kind, creating=old is None)
    for i, ip in enumerate(get_list(spec, "externalIPs", "spec", errs)):
        errs += validate_ip(ip, index("spec.externalIPs", i))
    if spec.get("loadBalancerIP"):
        errs += validate_ip(spec["loadBalancerIP"], "spec.loadBalancerIP")
    get_bool(spec, "publishNotReadyAddresses", "spec", errs)
    get_bool(spec, "allocateLoadBalancerNodePorts", "spec", errs)
    if old is not None:
        errs += _validate_update(spec, old)
    return errs


def _validate_external_name(spec: dict[str, Any]) -> Causes:
    errs: Causes = []
    name = get_str(spec, "externalName", "spec", errs)
    if not name:
        errs.append(required("spec.externalName"))
    else:
        errs += [invalid("spec.externalName", name, m) for m in is_dns1123_subdomain(name.removesuffix("."))]
    if spec.get("clusterIP") or spec.get("clusterIPs"):
        errs.append(forbidden("spec.clusterIPs", "may not be set for `type` ExternalName"))
    return errs


def _validate_ports(ports: list[tuple[str, dict[str, Any]]], kind: Any) -> Causes:
    errs: Causes = []
    names: set[str] = set()
    seen: set[tuple[str, int]] = set()
    node_ports: set[tuple[str, int]] = set()
    for p_path, port in ports:
        name = get_str(port, "name", p_path, errs)
        if len(ports) > 1 and not name:
            errs.append(required(child(p_path, "name")))
        elif name:
            errs += [invalid(child(p_path, "name"), name, m) for m in is_dns1123_label(name)]
            if name in names:
                errs.append(duplicate(child(p_path, "name"), name))
            names.add(name)
        number = port.get("port")
        errs += validate_port(number, child(p_path, "port"))
        protocol = port.get("protocol")
        errs += validate_protocol(protocol, child(p_path, "protocol"))
        if isinstance(protocol, str) and get_int(port, "port", p_path, []) is not None:
            if (protocol, number) in seen:
                errs.append(duplicate(p_path, {"port": number, "protocol": protocol}))
            seen.add((protocol, number))
        if port.get("targetPort") is not None:
            errs += validate_port_num_or_name(port["targetPort"], child(p_path, "targetPort"))
        errs += _validate_node_port(port, p_path, kind, node_ports)
        get_str(port, "appProtocol", p_path, errs)
    return errs


def _validate_node_port(port: dict[str, Any], path: str, kind: Any, seen: set[tuple[str, int]]) -> Causes:
    errs: Causes = []
    node_port = port.get("nodePort")
    if node_port is None or (is_int(node_port) and node_port == 0):
        return []
    n_path = child(path, "nodePort")
    errs += validate_port(node_port, n_path)
    if errs:
        return errs
    if kind not in _EXTERNAL:
        return [forbidden(n_path, f"may not be used when `type` is '{kind}'")]
    low, high = NODE_PORT_RANGE
    if not low <= node_port <= high:
        errs.append(invalid(n_path, node_port, "provided port is not in the valid range. "
                                               f"The range of valid ports is {low}-{high}"))
    protocol = port.get("protocol") if isinstance(port.get("protocol"), str) else ""
    if (protocol, node_port) in seen:
        errs.append(duplicate(n_path, node_port))
    seen.add((protocol, node_port))
    return errs


def _validate_policies(spec: dict[str, Any], kind: Any, *, creating: bool) -> Causes:
    errs: Causes = []
    external = spec.get("externalTrafficPolicy")
    if external not in (None, "") and kind not in _EXTERNAL and creating:
        errs.append(invalid("spec.externalTrafficPolicy", external,
                            "may only be set for externally-accessible services"))
    else:
        errs += validate_enum(external, "spec.externalTrafficPolicy", TRAFFIC_POLICIES)
    errs += validate_enum(spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy", TRAFFIC_POLICIES)
    errs += validate_enum(spec.get("ipFamilyPolicy"), "spec.ipFamilyPolicy", IP_FAMILY_POLICIES)
    families = get_list(spec, "ipFamilies", "spec", errs)
    for i, family in enumerate(families):
        errs += validate_enum(family, index("spec.ipFamilies", i), IP_FAMILIES)
        if isinstance(family, str) and family in families[:i]:
            errs.append(duplicate(index("spec.ipFamilies", i), family))
    if len(families) > 2:
        errs.append(invalid("spec.ipFamilies", families, "may specify no more than one IP for each IP family"))
    return errs


def _validate_update(spec: dict[str, Any], old: dict[str, Any]) -> Causes:
    """A cluster IP is how clients reach the service: once given, it stays,
    unless the service becomes or stops being an ExternalName."""
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    before, after = old_spec.get("clusterIP"), spec.get("clusterIP")
    if "ExternalName" in (old_spec.get("type"), spec.get("type")):
        return []
    if before and after and before != after:
        return [invalid("spec.clusterIP", after, "may not change once set")]
    return []


# -- Endpoints

def default_endpoints(obj: dict[str, Any]) -> None:
    for subset in dict_items(obj, "subsets"):
        for port in dict_items(subset, "ports"):
            default_str(port, "protocol", "TCP")


def validate_endpoints(obj: dict[str, Any], old: dict[str, Any] | None) -> Causes:
    errs: Causes = []
    for s_path, subset in get_dicts(obj, "subsets", "", errs):
        addresses = list(get_dicts(subset, "addresses", s_path, errs))
        not_ready = list(get_dicts(subset, "notReadyAddresses", s_path, errs))
        if not addresses and not not_ready:
            errs.append(required(s_path, "must specify `addresses` or `notReadyAddresses`"))
        for a_path, address in addresses + not_ready:
            errs += _validate_address(address, a_path)
        ports = list(get_dicts(subset, "ports", s_path, errs))
        for p_path, port in ports:
            name = get_str(port, "name", p_path, errs)
            if len(ports) > 1 and not name:
                errs.append(required(child(p_path, "name")))
            elif name:
                errs += validate_dns1123_label(name, child(p_path, "name"))
            errs += validate_port(port.get("port"), child(p_path, "port"))
            errs += validate_protocol(port.get("protocol"), child(p_path, "protocol"))
    return errs


def _validate_address(address: dict[str, Any], path: str) -> Causes:
    """Endpoints are where proxies send traffic: never to the host itself."""
    errs: Causes = []
    ip_path = child(path, "ip")
    ip = get_str(address, "ip", path, errs)
    parsed = parse_ip(ip)
    if not ip:
        errs.append(required(ip_path))
    elif parsed is None:
        errs.append(invalid(ip_path, ip, IP_MSG))
    elif parsed.is_unspecified:
        errs.append(invalid(ip_path, ip, "may not be unspecified (0.0.0.0)"))
    elif parsed.is_loopback:
        errs.append(invalid(ip_path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    elif parsed.is_link_local:
        errs.append(invalid(ip_path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    elif parsed.is_multicast:
        errs.append(invalid(ip_path, ip, "may not be in the multicast range (224.0.0.0/4, ff00::/8)"))
    errs += validate_dns1123_label(address.get("hostname"), child(path, "hostname"))
    errs += validate_dns1123_subdomain(address.get("nodeName"), child(path, "nodeName"))
    get_dict(address, "targetRef", path, errs)
    return errs
