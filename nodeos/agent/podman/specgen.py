"""Kubernetes pods and containers as libpod's PodSpecGenerator and SpecGenerator (Podman 4.3), pure.

A Kubernetes pod is a Podman pod whose infra container holds the network,
IPC and UTS namespaces (and PID with ``shareProcessNamespace``), as the pause
container does for the kubelet. Each Kubernetes container is one Podman
container in it; what Kubernetes means by a field is translated here, and a
field nodeos cannot honour is a *problem* (a string naming it) rather than
something silently dropped. Limits Podman refuses are only found when the
caller creates the container.

Facts checked against Podman 4.3's service:
- ``entrypoint`` set replaces the image's ENTRYPOINT *and* drops its CMD, so
  ``command`` without ``args`` runs exactly ``command``; ``command`` alone
  keeps the image's ENTRYPOINT — Kubernetes' command/args semantics.
- capabilities may be written ``NET_ADMIN`` or ``CAP_NET_ADMIN``; we send the latter.
- ``read_only_filesystem`` through the API adds no tmpfs on /tmp, /run (the CLI does).
- without ``resource_limits.memory.swap`` Podman allows swap of twice the limit; Kubernetes allows none.
- a pod joins a network with ``"netns": {"nsmode": "bridge"}, "Networks": {name: {}}``; host networking
  is ``netns`` and ``utsns`` mode host (the pod then has the host's name, as in Kubernetes).
- the pod's resolv.conf is its infra container's, from ``dns_server``, ``dns_search`` and ``dns_option``;
  each given replaces the host's (an empty list does not: ``dns_search`` ``["."]`` means no search domains).

Left out on purpose: ports (pods reach each other by pod IP; hostPort is not
served), sysctls, hostIPC (Podman 4.3 pods cannot share the
host's IPC namespace), oom_score_adj (negative values need CAP_SYS_RESOURCE,
which some hosts lack), the termination-message file, log settings.
"""

from __future__ import annotations

import math
from decimal import Decimal

from nodeos.agent.envvars import container_env, expand, service_env
from nodeos.api.model.quantity import parse_quantity
from nodeos.network.dns.resolvconf import ResolvConf

__all__ = ["container_env", "container_spec", "expand", "hostname", "pod_dns", "pod_spec", "service_env"]

CPU_PERIOD = 100_000     # µs; the kubelet's CFS period
_MIN_QUOTA = 1_000       # µs; the kernel's (and the kubelet's) smallest quota
_MIN_SHARES, _MAX_SHARES = 2, 262_144
_HOSTNAME_MAX = 63


# -- the pod ---------------------------------------------------------------------------------------------

def pod_spec(pod: dict, *, network: str | None, labels: dict[str, str], name: str,
             dns: ResolvConf | None = None) -> dict:
    """The PodSpecGenerator of the pod's Podman pod: on ``network`` (a Podman network), or on the host's
    network with ``hostNetwork``; without either, on Podman's default network. ``dns``: its resolver
    settings (``dnsconfig.pod_resolv_conf``); None leaves Podman to copy the host's."""
    spec = pod.get("spec") or {}
    shared = ["ipc", "net", "uts"]
    if spec.get("shareProcessNamespace") or spec.get("hostPID"):
        shared.append("pid")
    generator: dict = {"name": name, "labels": dict(labels), "infra_name": f"{name}-infra",
                       "shared_namespaces": shared}
    if spec.get("hostNetwork"):
        generator["netns"] = {"nsmode": "host"}
        generator["utsns"] = {"nsmode": "host"}
    else:
        generator["hostname"] = hostname(pod)
        generator["netns"] = {"nsmode": "bridge"}
        if network:
            generator["Networks"] = {network: {}}
    if spec.get("hostPID"):
        generator["pidns"] = {"nsmode": "host"}
    if dns is not None:
        generator.update(pod_dns(dns))
    return generator


def pod_dns(resolv: ResolvConf) -> dict[str, list[str]]:
    """libpod's resolv.conf fields; no nameservers keeps the host's (a pod must have some)."""
    fields = {"dns_search": list(resolv.searches) or ["."], "dns_option": list(resolv.options)}
    if resolv.nameservers:
        fields["dns_server"] = list(resolv.nameservers)
    return fields


def hostname(pod: dict) -> str:
    """``spec.hostname`` or the pod's name, cut to a DNS label as the kubelet cuts it."""
    name = (pod.get("spec") or {}).get("hostname") or pod["metadata"]["name"]
    return name[:_HOSTNAME_MAX].rstrip("-.") if len(name) > _HOSTNAME_MAX else name


# -- a container -----------------------------------------------------------------------------------------

def container_spec(pod: dict, container: dict, *, pod_id: str, name: str, labels: dict[str, str],
                   env: dict[str, str], mounts: list[dict], image: str) -> tuple[dict, list[str]]:
    """The SpecGenerator of one run of ``container`` in the Podman pod ``pod_id``, and its problems.

    ``env`` is the container's environment (``container_env``), which also expands ``$(VAR)`` in
    command and args; ``mounts`` its volume mounts (``volumes.container_mounts``). Podman never
    restarts it: restarts are the agent's, so that it can count them and back off."""
    generator: dict = {
        "name": name, "image": image, "pod": pod_id, "labels": dict(labels), "env": dict(env),
        "mounts": list(mounts), "restart_policy": "no",
        "terminal": bool(container.get("tty")), "stdin": bool(container.get("stdin")),
        "httpproxy": False,  # Kubernetes passes no proxy variables of the host into containers
        **_command(container, env),
    }
    if container.get("workingDir"):
        generator["work_dir"] = container["workingDir"]
        generator["create_working_dir"] = True  # as container runtimes for Kubernetes do
    limits, problems = resource_limits(container)
    generator["resource_limits"] = limits
    security, security_problems = _security(pod, container)
    generator.update(security)
    return generator, problems + security_problems


def _command(container: dict, env: dict[str, str]) -> dict[str, list[str]]:
    """``command`` replaces the image's ENTRYPOINT (and with it its CMD), ``args`` replace its CMD."""
    command = [expand(part, env) for part in container.get("command") or []]
    args = [expand(part, env) for part in container.get("args") or []]
    if command:
        return {"entrypoint": command, "command": args}
    if args:
        return {"command": args}
    return {}


# -- resources -------------------------------------------------------------------------------------------

def resource_limits(container: dict) -> tuple[dict, list[str]]:
    """``resource_limits`` (an OCI LinuxResources) as the kubelet sets the cgroup: memory limit without
    swap, CPU limit as a CFS quota, CPU request as shares (the request defaults to the limit)."""
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    problems: list[str] = []
    memory = _quantity(limits, "memory", "limits", problems)
    cpu_limit = _quantity(limits, "cpu", "limits", problems)
    cpu_request = _quantity(requests, "cpu", "requests", problems) or cpu_limit
    cpu: dict[str, int] = {"shares": _shares(cpu_request)}
    if cpu_limit:
        cpu["quota"] = max(_MIN_QUOTA, _millis(cpu_limit) * CPU_PERIOD // 1000)
        cpu["period"] = CPU_PERIOD
    result: dict = {"cpu": cpu}
    if memory:
        memory_bytes = math.ceil(memory)
        result["memory"] = {"limit": memory_bytes, "swap": memory_bytes}
    return result, problems


def _quantity(values: dict, resource: str, kind: str, problems: list[str]) -> Decimal | None:
    if values.get(resource) is None:
        return None
    try:
        return parse_quantity(values[resource])
    except ValueError as exc:
        problems.append(f"resources.{kind}.{resource} {values[resource]!r}: {exc}")
        return None


def _millis(cpu: Decimal) -> int:
    return math.ceil(cpu * 1000)


def _shares(cpu_request: Decimal | None) -> int:
    if not cpu_request:
        return _MIN_SHARES
    return min(_MAX_SHARES, max(_MIN_SHARES, _millis(cpu_request) * 1024 // 1000))


# -- security --------------------------------------------------------------------------------------------

def _security(pod: dict, container: dict) -> tuple[dict, list[str]]:
    """The securityContext, the container's over the pod's where both may say."""
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    context = container.get("securityContext") or {}
    merged = {**pod_context, **{k: v for k, v in context.items() if v is not None}}
    generator: dict = {}
    problems: list[str] = []
    user, group = merged.get("runAsUser"), merged.get("runAsGroup")
    if user is not None:
        generator["user"] = str(user) if group is None else f"{user}:{group}"
    elif group is not None:
        problems.append("securityContext.runAsGroup is set without runAsUser")
    if merged.get("runAsNonRoot") and user == 0:
        problems.append("securityContext.runAsUser 0 breaks the runAsNonRoot policy")
    groups = [*(pod_context.get("supplementalGroups") or []), *_present(pod_context.get("fsGroup"))]
    if groups:
        generator["groups"] = [str(g) for g in groups]
    if context.get("privileged"):
        generator["privileged"] = True
    if context.get("readOnlyRootFilesystem"):
        generator["read_only_filesystem"] = True
    if context.get("allowPrivilegeEscalation") is False:
        generator["no_new_privileges"] = True
    capabilities = context.get("capabilities") or {}
    if capabilities.get("add"):
        generator["cap_add"] = [_capability(c) for c in capabilities["add"]]
    if capabilities.get("drop"):
        generator["cap_drop"] = [_capability(c) for c in capabilities["drop"]]
    seccomp, seccomp_problems = _seccomp(merged.get("seccompProfile") or {})
    return {**generator, **seccomp}, problems + seccomp_problems


def _present(value: object) -> list:
    return [] if value is None else [value]


def _capability(name: str) -> str:
    name = name.upper()
    return name if name == "ALL" or name.startswith("CAP_") else f"CAP_{name}"


def _seccomp(profile: dict) -> tuple[dict, list[str]]:
    """Kubernetes runs containers unconfined unless told ``RuntimeDefault`` (Podman's own profile)."""
    kind = profile.get("type") or "Unconfined"
    if kind == "RuntimeDefault":
        return {}, []
    if kind == "Unconfined":
        return {"seccomp_profile_path": "unconfined"}, []
    return {}, [f"securityContext.seccompProfile type {kind!r} is not supported"]
