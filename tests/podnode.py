"""An all-in-one nodeos daemon running real pods on Podman, for integration and end-to-end tests.

``PodmanNode`` is a ``nodeos daemon`` process with role "all" (API server,
scheduler, controller manager and the node agent on Podman) on loopback
ports, its agent on 127.0.0.1 and using the test session's Podman service.
Each test works in a namespace of its own (``node.namespace()``), whose
Podman pods ``cleanup`` removes even when the agent did not get to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from nodeos.daemon import NODE_NETWORK
from tests.daemon import READY_TIMEOUT, Daemon, free_port, node_is_ready
from tests.podman import CONTAINERS_CONF, remove_labelled
from tests.waiting import poll

POD_TIMEOUT = 60.0


class PodmanNode:
    """A real all-in-one node; see the module docstring."""

    def __init__(self, workdir: Path, podman_socket: Path, *, name: str | None = None, manage: bool = False,
                 network: bool = False) -> None:
        """``manage``: the daemon starts (and supervises) its own Podman service on ``podman_socket``.

        ``network``: also run the overlay, the Service proxy and the DNS in this
        host's own network namespace (off by default: they change the host's
        nftables and links, which only the networking tests should).
        """
        self.name = name or f"node-{uuid.uuid4().hex[:6]}"
        self.agent_port = free_port()
        self.podman_socket = podman_socket
        config = (f'[agent]\naddress = "127.0.0.1"\nport = {self.agent_port}\nheartbeat_seconds = 1\n'
                  f'[podman]\nsocket = "{podman_socket}"\nmanage = {str(manage).lower()}\n'
                  f'containers_conf = "{CONTAINERS_CONF}"\n')
        disable = () if network else NODE_NETWORK
        self.daemon = Daemon(workdir, role="all", name=self.name, disable=disable, extra_config=config)
        self.namespaces: list[str] = []

    @property
    def url(self) -> str:
        return self.daemon.url

    def start(self) -> PodmanNode:
        self.daemon.start()
        self.wait_node_ready()
        return self

    def wait_node_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        return self.wait_for(lambda: _ready_node(self.url, self.name), timeout, f"node {self.name} Ready")

    def restart(self) -> None:
        """Stop the daemon (SIGTERM) and start it again on the same data."""
        self.daemon.stop()
        self.daemon.start()
        self.wait_node_ready()

    def stop(self) -> None:
        self.daemon.stop()
        for namespace in self.namespaces:
            remove_labelled(f"nodeos.pod-namespace={namespace}")

    # -- objects ---------------------------------------------------------------------------------

    def namespace(self) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.post("/api/v1/namespaces", {"metadata": {"name": name}})
        self.namespaces.append(name)
        return name

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(self.url + path, json=body, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, path: str) -> dict[str, Any] | None:
        response = httpx.get(self.url + path, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def create_pod(self, namespace: str, name: str, containers: list[dict[str, Any]], **spec: Any) -> dict:
        return self.post(f"/api/v1/namespaces/{namespace}/pods", {
            "metadata": {"name": name}, "spec": {"containers": containers, **spec}})

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def wait_pod(self, namespace: str, name: str, ok: Callable[[dict[str, Any]], Any],
                 timeout: float = POD_TIMEOUT, what: str = "") -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            pod = self.pod(namespace, name)
            return pod if pod is not None and ok(pod) else None
        return self.wait_for(check, timeout, what or f"pod {namespace}/{name}",
                             lambda: self.pod(namespace, name))

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        events = self.get(f"/api/v1/namespaces/{namespace}/events") or {"items": []}
        return [e for e in events["items"] if e["involvedObject"].get("name") == name]

    def wait_for(self, fn: Callable[[], Any], timeout: float, what: str,
                 show: Callable[[], Any] | None = None) -> Any:
        def context() -> str:
            return f"last seen: {show() if show else None}\ndaemon log tail:\n{self.daemon.log()}"
        return poll(fn, timeout, what, context, interval=0.2)


def _ready_node(url: str, name: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/api/v1/nodes/{name}", timeout=2)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    node = response.json()
    return node if node_is_ready(node) and (node.get("spec") or {}).get("podCIDR") else None


def phase(pod: dict[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase", "")


def container_status(pod: dict[str, Any], name: str, *, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next((c for c in (pod.get("status") or {}).get(key) or [] if c["name"] == name), {})


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
