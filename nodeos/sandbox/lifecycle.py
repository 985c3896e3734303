"""``up``, ``load``, ``status`` and ``down``: a sandbox's whole life.

``up`` saves the sandbox's state file before it creates anything in the
kernel, and on any failure (or Ctrl-C) runs ``down`` before it re-raises:
whatever exists belongs to a state file, so ``down`` always finds it.
``down`` works from the state file and from names alone, skips what is
already gone, and can be repeated.

Order of ``down``: the daemons first (each stops its Podman service), so
no agent re-creates a pod while the pods are removed; then every host's
pods and containers through the Podman CLI on that host's storage; then
whatever still runs in a host's namespace or from its directory (conmon,
an orphaned Podman service); then the namespaces, veths and the bridge.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from nodeos.sandbox.credentials import admin_client, ensure_credentials
from nodeos.sandbox.hostconfig import write_host_files, write_kubeconfig
from nodeos.sandbox.layout import SOCKET_MAX, Host, Sandbox, tag_of
from nodeos.sandbox.podman import load_image, remove_containers
from nodeos.sandbox.processes import daemon_pid, how_it_ended, kill_leftovers, start_daemon, stop_daemons
from nodeos.sandbox.system import SandboxError, check_host, run
from nodeos.sandbox.underlay import create_bridge, create_host, free_subnet, netns_exists, remove_underlay, subnet_lock

__all__ = ["down", "load", "status", "up"]

READY_TIMEOUT = 180.0
Print = Callable[[str], None]


def up(directory: Path, workers: int, *, proxy_mode: str = "nftables", network: bool = True,
       timeout: float = READY_TIMEOUT, out: Print = print) -> Sandbox:
    """Build the sandbox of ``directory`` and wait until every Node is Ready; see the module docstring."""
    check_host()
    directory = directory.resolve()
    _check_free(directory)
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with subnet_lock():
        sandbox = Sandbox.plan(directory, workers, free_subnet(tag_of(directory)), proxy_mode, network)
        sandbox.save()
        try:
            create_bridge(sandbox)
        except BaseException:
            _down(sandbox)
            raise
    try:
        out(f"sandbox {sandbox.tag}: underlay {sandbox.subnet} on bridge {sandbox.bridge} "
            f"(this namespace: {sandbox.gateway})")
        ensure_credentials(sandbox)
        for host in sandbox.hosts:
            write_host_files(sandbox, host)
            create_host(sandbox, host)
            start_daemon(host)
            out(f"  {host.name:<9} {host.ip:<15} netns {host.netns}, role {host.role}, log {host.log}")
        _wait_ready(sandbox, started, timeout, out)
        write_kubeconfig(sandbox)
    except BaseException:
        out("sandbox up failed: removing what was built")
        _down(sandbox)
        raise
    out(f"sandbox up in {time.monotonic() - started:.1f} s. Use it with:\n"
        f"  export KUBECONFIG={sandbox.kubeconfig}\n"
        f"  kubectl get nodes -o wide\n"
        f"  nodeos sandbox load --dir {directory} IMAGE.tar   # images: nothing can be pulled\n"
        f"  nodeos sandbox down --dir {directory}")
    return sandbox


def _check_free(directory: Path) -> None:
    if Sandbox.load(directory) is not None:
        raise SandboxError(f"{directory}: a sandbox is already up there (nodeos sandbox down --dir {directory})")
    if len(str(directory / "worker99" / "podman" / "podman.sock")) > SOCKET_MAX:
        raise SandboxError(f"{directory}: too long a path for the hosts' Podman sockets; use a shorter --dir")


def _wait_ready(sandbox: Sandbox, started: float, timeout: float, out: Print) -> None:
    """Poll the master's API until every host's Node is Ready; fail early when a daemon dies."""
    waiting = {host.name: host for host in sandbox.hosts}
    deadline = started + timeout
    with admin_client(sandbox, timeout=5) as client:
        while waiting:
            for host in waiting.values():
                if daemon_pid(host) is None:
                    ended = how_it_ended(host)
                    raise SandboxError(f"{host.name}: the daemon exited{f' ({ended})' if ended else ''}; "
                                       f"see {host.log}: {_last_line(host.log)}")
            for name in sorted(waiting.keys() & _ready_nodes(client, sandbox.url)):
                out(f"  {name:<9} Ready after {time.monotonic() - started:.1f} s")
                del waiting[name]
            if waiting and time.monotonic() > deadline:
                raise SandboxError(f"not Ready after {timeout:.0f} s: {', '.join(sorted(waiting))} "
                                   f"(see {sandbox.dir}/<host>/daemon.log)")
            time.sleep(0.5)


def _ready_nodes(client: httpx.Client, url: str) -> set[str]:
    try:
        response = client.get(f"{url}/api/v1/nodes")
        items = response.json().get("items", []) if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return set()
    return {node["metadata"]["name"] for node in items
            if any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (node.get("status") or {}).get("conditions") or [])}


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def load(directory: Path, archive: Path, *, out: Print = print) -> None:
    """Load an image archive into every host's Podman, the hosts in parallel."""
    sandbox = _existing(directory)
    if not archive.is_file():
        raise SandboxError(f"{archive}: no such file")
    with ThreadPoolExecutor(len(sandbox.hosts)) as pool:
        names = list(pool.map(lambda host: load_image(host, archive), sandbox.hosts))
    for host, loaded in zip(sandbox.hosts, names, strict=True):
        out(f"  {host.name:<9} loaded {', '.join(loaded) or '(no names)'}")


def status(directory: Path, *, out: Print = print) -> None:
    sandbox = _existing(directory)
    with admin_client(sandbox, timeout=3) as client:
        ready = _ready_nodes(client, sandbox.url)
    out(f"sandbox {sandbox.tag} in {sandbox.dir}: underlay {sandbox.subnet}, proxy {sandbox.proxy_mode}, "
        f"API {sandbox.url}")
    out(f"  {'HOST':<9} {'IP':<15} {'NETNS':<28} {'DAEMON':<8} NODE")
    for host in sandbox.hosts:
        pid = daemon_pid(host)
        out(f"  {host.name:<9} {host.ip:<15} {host.netns:<28} {pid or 'stopped'!s:<8} "
            f"{'Ready' if host.name in ready else 'NotReady'}")


def _existing(directory: Path) -> Sandbox:
    check_host()
    sandbox = Sandbox.load(directory.resolve())
    if sandbox is None:
        raise SandboxError(f"{directory}: no sandbox there (nodeos sandbox up --dir {directory})")
    return sandbox


def down(directory: Path, *, out: Print = print) -> None:
    """Remove the sandbox of ``directory``, whatever state it is in; nothing there is fine."""
    check_host()
    directory = directory.resolve()
    sandbox = Sandbox.load(directory) or _orphan(directory)
    started = time.monotonic()
    steps = _down(sandbox)
    out(f"sandbox {sandbox.tag} removed in {time.monotonic() - started:.1f} s ({steps})")


def _orphan(directory: Path) -> Sandbox:
    """A sandbox whose state file is gone: its hosts from their directories, its kernel names from the tag."""
    hosts = tuple(Host(i, path.name, f"nodeos-sb-{tag_of(directory)}-{path.name}", "", "", path)
                  for i, path in enumerate(sorted(p.parent for p in directory.glob("*/nodeos.toml"))))
    return Sandbox(directory, tag_of(directory), "", "", False, hosts)


def _down(sandbox: Sandbox) -> str:
    """Remove everything of ``sandbox``; how long each step took, for the operator."""
    hosts = list(sandbox.hosts)
    steps: list[str] = []

    def step(name: str, started: float) -> float:
        now = time.monotonic()
        steps.append(f"{name} {now - started:.1f} s")
        return now

    started = time.monotonic()
    stop_daemons(hosts)
    started = step("daemons", started)
    if hosts:
        with ThreadPoolExecutor(len(hosts)) as pool:
            list(pool.map(_empty_podman, hosts))
    started = step("pods", started)
    for host in hosts:
        kill_leftovers(host)
    remove_underlay(sandbox)
    for host in hosts:
        _remove_runtime_dirs(host)
    sandbox.kubeconfig.unlink(missing_ok=True)
    sandbox.state_file.unlink(missing_ok=True)
    step("namespaces and links", started)
    return ", ".join(steps)


def _empty_podman(host: Host) -> None:
    """The host's pods and containers removed, in its namespace (re-made empty if it is already gone)."""
    if not (host.graphroot / "libpod").exists():
        return
    if not netns_exists(host.netns):
        run(["ip", "netns", "add", host.netns], check=False)
    remove_containers(host)


def _remove_runtime_dirs(host: Host) -> None:
    """What Podman keeps for a running system (as /run is after a reboot); images stay in storage."""
    for path in (host.runroot, host.podman_tmp, host.podman_socket.parent):
        _unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def _unmount_under(path: Path) -> None:
    """Lazily unmount anything a crashed Podman left mounted under ``path``, deepest first."""
    prefix = str(path) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
