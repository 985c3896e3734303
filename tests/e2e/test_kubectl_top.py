"""``kubectl top`` over TLS, as an administrator and as a viewer, on an all-in-one node of the simulator.

The node's agent serves its made-up usage on 127.0.0.1 (``[agent] address``),
so the API server's metrics API and node proxy have an agent to ask. The
viewer (bound to role "view" in the policy file) may read the metrics API,
as ``kubectl top`` needs, but not the node proxy, which reaches the agents
with the API server's own credential.
"""

from __future__ import annotations

import pytest

from tests.daemon import Daemon, free_port, kubeconfig_for
from tests.kubectl import run_kubectl
from tests.waiting import poll

pytestmark = pytest.mark.e2e
POD = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - {name: app, image: example.invalid/web:1, resources: {requests: {cpu: 500m, memory: 256Mi}}}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("top-tls")
    (workdir / "data").mkdir()
    (workdir / "data" / "policy.toml").write_text('[[bind]]\nrole = "view"\nusers = ["viewer"]\n')
    daemon = Daemon(workdir, role="all", name="top-node", disable=(), extra_config=(
        f'tls = true\n[agent]\nruntime = "simulated"\naddress = "127.0.0.1"\nport = {free_port()}\n'))
    daemon.start()
    yield daemon
    daemon.stop()


def test_kubectl_top_over_tls(node, tmp_path):
    admin = kubeconfig_for(node, tmp_path / "admin")
    viewer = kubeconfig_for(node, tmp_path / "viewer", "--user", "viewer")
    cache = tmp_path / "cache"
    run_kubectl(admin, cache, "apply", "-f", "-", input=POD)

    def top_pods() -> str | None:
        result = run_kubectl(viewer, cache, "top", "pods", check=False)
        return result.stdout if result.returncode == 0 and "web" in result.stdout else None

    out = poll(top_pods, timeout=30, what="kubectl top pods as the viewer", context=node.log)
    row = out.splitlines()[1].split()
    assert row[0] == "web" and 100 <= int(row[1][:-1]) <= 400  # 20-80% of the 500m it requests
    nodes = run_kubectl(viewer, cache, "top", "nodes").stdout
    assert nodes.splitlines()[1].split()[0] == "top-node" and "<unknown>" not in nodes

    raw = run_kubectl(admin, cache, "get", "--raw", "/api/v1/nodes/top-node/proxy/stats/summary").stdout
    assert '"source":"simulated"' in raw.replace(" ", "")
    refused = run_kubectl(viewer, cache, "get", "--raw", "/api/v1/nodes/top-node/proxy/stats/summary", check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
