"""The kernel's part: modules, the forwarding sysctls, cgroups.

A module counts as present when it is loaded (``/proc/modules``), built in
(``modules.builtin``, or ``=y`` in the kernel's config), or available to
load (``modules.dep``, or ``=m``). Built-in modules without parameters have
no ``/sys/module`` entry, and a kernel built without module support has no
``/proc/modules`` at all, so every source is read and the first that knows
decides.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

from nodeos.config import Config
from nodeos.doctor import Check

__all__ = ["Module", "check_bridge_netfilter", "check_cgroups", "check_ip_forward", "check_modules",
           "module_state"]

ROOT = Path("/")


@dataclass(frozen=True)
class Module:
    name: str
    config: str  # the kernel config symbol
    why: str  # what nodeos needs it for
    autoload: bool  # the kernel loads it on first use (creating a link, a table, a mount)


MODULES = (
    Module("vxlan", "CONFIG_VXLAN", "the overlay's VXLAN device", True),
    Module("bridge", "CONFIG_BRIDGE", "the pod network's bridge", True),
    Module("veth", "CONFIG_VETH", "the pods' network interfaces", True),
    Module("br_netfilter", "CONFIG_BRIDGE_NETFILTER", "nftables on traffic between pods of one node", False),
    Module("nf_tables", "CONFIG_NF_TABLES", "the Service proxy's rules and the forward guard", True),
    Module("overlay", "CONFIG_OVERLAY_FS", "Podman's overlay storage driver", True),
)


def _read(path: Path) -> str | None:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt") as f:
                return f.read()
        return path.read_text()
    except (OSError, EOFError):
        return None


def _kernel_config(root: Path, release: str) -> dict[str, str]:
    text = _read(root / "proc/config.gz") or _read(root / f"boot/config-{release}") or ""
    return dict(line.split("=", 1) for line in text.splitlines() if line.startswith("CONFIG_") and "=" in line)


def _module_files(text: str | None) -> set[str]:
    """Module names in ``modules.builtin`` or ``modules.dep`` (``kernel/.../vxlan.ko.xz: ...``)."""
    names = set()
    for line in (text or "").splitlines():
        path = line.split(":", 1)[0]
        base = path.rsplit("/", 1)[-1]
        names.add(base.split(".ko", 1)[0].replace("-", "_"))
    return names


def module_state(module: Module, root: Path = ROOT, release: str | None = None) -> str:
    """``loaded``, ``built in``, ``loadable``, ``missing`` or ``unknown`` (nothing to tell from)."""
    release = release or os.uname().release
    loaded = _read(root / "proc/modules")
    if loaded and module.name in {line.split()[0] for line in loaded.splitlines() if line.strip()}:
        return "loaded"
    lib = root / "lib/modules" / release
    if module.name in _module_files(_read(lib / "modules.builtin")):
        return "built in"
    kconfig = _kernel_config(root, release)
    if kconfig.get(module.config) == "y":
        return "built in"
    if (root / "sys/module" / module.name).exists():
        return "loaded"
    if module.name in _module_files(_read(lib / "modules.dep")) or kconfig.get(module.config) == "m":
        return "loadable"
    if kconfig or loaded is not None:
        return "missing"
    return "unknown"


def _needed(module: Module, config: Config) -> bool:
    """Whether a missing module breaks this node (else it only degrades something)."""
    if module.name == "vxlan":
        return config.network.backend == "vxlan"
    if module.name == "nf_tables":
        return config.proxy.mode == "nftables"
    return module.name in ("bridge", "veth")


def check_modules(config: Config, root: Path = ROOT) -> list[Check]:
    checks = []
    for module in MODULES:
        state, name = module_state(module, root), f"kernel module {module.name}"
        if state in ("loaded", "built in"):
            checks.append(Check(name, "ok", state))
        elif state == "loadable" and module.autoload:
            checks.append(Check(name, "ok", "a module, loaded on first use"))
        elif state == "loadable":
            checks.append(Check(name, "warn", f"not loaded (needed for {module.why})",
                                (f"modprobe {module.name}",
                                 f"echo {module.name} > /etc/modules-load.d/nodeos.conf  # at every boot")))
        else:
            status = "fail" if state == "missing" and _needed(module, config) else "warn"
            what = "not in this kernel" if state == "missing" else "cannot tell (no /proc/modules, no kernel config)"
            checks.append(Check(name, status, f"{what}; needed for {module.why}",
                                (f"modprobe {module.name}  # or a kernel with {module.config}",)))
    return checks


def _sysctl(name: str, root: Path = ROOT) -> str | None:
    text = _read(root / "proc/sys" / name.replace(".", "/"))
    return text.strip() if text is not None else None


def check_ip_forward(root: Path = ROOT) -> Check:
    value = _sysctl("net.ipv4.ip_forward", root)
    if value == "1":
        return Check("net.ipv4.ip_forward", "ok", "1: the host routes between pods, the overlay and the underlay")
    return Check("net.ipv4.ip_forward", "fail",
                 f"{value}: the host does not route, so pods reach nothing beyond their bridge "
                 "(netavark turns it on when it makes a network, but not after a reboot before that)",
                 ("sysctl -w net.ipv4.ip_forward=1",
                  "echo net.ipv4.ip_forward=1 > /etc/sysctl.d/90-nodeos.conf  # at every boot"))


def check_bridge_netfilter(root: Path = ROOT) -> Check:
    """bridge-nf-call-iptables = 1 sends frames between two pods of one bridge through the ip hooks.

    Why it matters: a pod reaching a Service whose chosen backend is on the same node gets its
    request DNATed by the host, but the backend answers straight over the bridge; without the
    hooks that answer never meets conntrack, is not un-NATed, and the client drops it. The
    same setting makes a forward drop (the trap) apply to same-node pod traffic as well.
    """
    name = "net.bridge.bridge-nf-call-iptables"
    value = _sysctl(name, root)
    if value == "1":
        return Check(name, "ok", "1: traffic between pods of this node passes nftables (Services to local "
                                 "backends are un-NATed; forward rules apply to it too)")
    detail = "br_netfilter is not loaded" if value is None else "0"
    return Check(name, "warn", f"{detail}: traffic between pods of this node bypasses nftables, so a pod "
                               "reaching a Service backend on its own node gets answers it drops",
                 ("modprobe br_netfilter", f"sysctl -w {name}=1",
                  f"echo {name}=1 > /etc/sysctl.d/90-nodeos.conf  # at every boot"))


def cgroup_layout(root: Path = ROOT) -> str | None:
    """"v2", "hybrid" or "v1" from ``/proc/self/cgroup`` (None when unreadable).

    Read from the process, not from ``/sys/fs/cgroup``: ``ip netns exec`` mounts a fresh sysfs
    without the cgroup mounts, and the doctor is often run that way on a sandbox host.
    """
    text = _read(root / "proc/self/cgroup")
    if not text:
        return None
    hierarchies = [line.split(":", 2)[1] for line in text.splitlines() if line.count(":") >= 2]
    unified = "" in hierarchies
    named_only = all(h.startswith("name=") for h in hierarchies if h)
    if unified and (len(hierarchies) == 1 or named_only):
        return "v2"
    return "hybrid" if unified else "v1"


def _runs_runc(config: Config | None) -> bool:
    """Whether the node's containers.conf picks runc (which, unlike crun, takes hybrid cgroups)."""
    conf = config.podman.containers_conf if config is not None else None
    text = _read(conf) if conf is not None else None
    return text is not None and any(line.split("#")[0].replace(" ", "") == 'runtime="runc"'
                                    for line in text.splitlines())


def check_cgroups(root: Path = ROOT, config: Config | None = None) -> Check:
    layout = cgroup_layout(root)
    if layout == "v2":
        controllers = _read(root / "sys/fs/cgroup/cgroup.controllers")
        have = controllers.split() if controllers is not None else None
        lacking = [c for c in ("cpu", "memory", "pids") if have is not None and c not in have]
        if lacking:
            return Check("cgroups", "warn", f"v2 (unified) without {', '.join(lacking)}: pod limits on them "
                                            "are not enforced", ("enable them in the parent's cgroup.subtree_control",))
        return Check("cgroups", "ok", "v2 (unified)" + (f": {' '.join(have)}" if have else ""))
    if layout == "hybrid" and _runs_runc(config):
        return Check("cgroups", "ok", f"hybrid; runc is configured in {config.podman.containers_conf}")
    if layout == "hybrid":
        return Check("cgroups", "warn", "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified): crun refuses it",
                     ('[engine] runtime = "runc" in the containers.conf of [podman] containers_conf',
                      "or boot with systemd.unified_cgroup_hierarchy=1"))
    if layout == "v1":
        return Check("cgroups", "ok", "v1 (legacy): Podman runs with runc")
    return Check("cgroups", "fail", "this process is in no cgroup hierarchy (/proc/self/cgroup)",
                 ("mount cgroup2 on /sys/fs/cgroup",))
