#!/usr/bin/env bash
# Start a one-node nodeos on this machine, show kubectl using it, then follow
# its log until Ctrl-C, which stops it. Extra arguments go to `nodeos up`
# (see `.venv/bin/nodeos up --help`); NODEOS_DATA_DIR picks the data directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh

ensure_python
ensure_network_tools
ensure_podman
ensure_venv
# The demo's image, built from Debian's busybox-static: these machines pull from no registry.
CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/config/containers.conf} .venv/bin/python -m tests.podman >/dev/null

# Hosts with cgroups v1 or hybrid (no cgroup.controllers at the root) need the
# shipped containers.conf (runc, explicit ulimits); others use Podman's own.
podman_args=()
if [[ ! -f /sys/fs/cgroup/cgroup.controllers ]]; then
    podman_args=(--containers-conf "$PWD/config/containers.conf")
fi

if ((EUID == 0)); then default_dir=/var/lib/nodeos; else default_dir=${XDG_DATA_HOME:-$HOME/.local/share}/nodeos; fi
data_dir=${NODEOS_DATA_DIR:-$default_dir}
log=$data_dir/nodeos.log
kubeconfig=$data_dir/kubeconfig
mkdir -p "$data_dir"
rm -f "$kubeconfig" # `nodeos up` writes it afresh; an old one must not look ready

.venv/bin/nodeos up --data-dir "$data_dir" "${podman_args[@]}" "$@" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

# Wait until the API answers /readyz at the address the kubeconfig names.
wait_ready() {
    .venv/bin/python - "$kubeconfig" "$pid" <<'PY'
import os, sys, time
import httpx

from nodeos.client.kubeconfig import load_connection

path, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    os.kill(pid, 0)  # raises once nodeos has exited
    try:
        connection = load_connection(path)  # the server, and over TLS the cluster CA to trust
        if httpx.get(f"{connection.server}/readyz", verify=connection.ssl_context(), timeout=1).status_code == 200:
            sys.exit(0)
    except Exception:  # not written yet, half written, not answering
        pass
    time.sleep(0.2)
sys.exit("nodeos was not ready after 60 s")
PY
}

# kube ARGS...: show a kubectl command, then run it; a failure is shown, not fatal.
kube() {
    printf '\n$ kubectl %s\n' "$*"
    kubectl --cache-dir "$cache" "$@" || echo "(kubectl exited with status $?)"
}

echo "run.sh: starting nodeos (log: $log)"
if ! wait_ready; then
    echo "run.sh: nodeos did not come up; its log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi

export KUBECONFIG=$kubeconfig
if command -v kubectl >/dev/null; then
    cache=$(mktemp -d) # fresh API discovery: kubectl would otherwise reuse it for 6 hours
    kube get namespaces
    kube apply -f config/examples/demo.yaml
    kube -n demo rollout status deployment/web --timeout=120s
    kube -n demo get pods -o wide
    kube -n demo logs deployment/web
    kube -n demo exec deployment/web -- wget -qO- http://127.0.0.1:8080/index.html
    # The Service by name: the node's cluster DNS, then its ClusterIP through the Service proxy.
    kube -n demo exec deployment/web -- wget -qO- http://web/index.html
    kube get all -A
    rm -rf "$cache"
else
    echo "run.sh: kubectl is not installed; the demo needs it"
fi

cat <<MSG

nodeos is running (pid $pid). In another shell:
    export KUBECONFIG=$kubeconfig
    kubectl get all -A
    $PWD/.venv/bin/nodeos dashboard
Its log follows; Ctrl-C stops it.

MSG
# tail in the background: `wait` returns at once when a signal arrives, a
# foreground tail would hold the trap until it ended.
tail -n +1 -f --pid="$pid" "$log" &
wait "$pid"
