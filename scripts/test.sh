#!/usr/bin/env bash
# Lint and test nodeos: ruff, then pytest. Extra arguments go to pytest
# (e.g. `scripts/test.sh tests/unit -k config`). Exits non-zero on any failure,
# including a pytest run that collected no tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh

ensure_python
ensure_command etcd etcd-server # a real etcd for the etcd store's tests and the benchmarks
ensure_network_tools             # nft and ip for the proxy, the overlay and the sandbox
ensure_command debootstrap debootstrap # a clean Debian tree the package tests install the deb into
ensure_command rpmbuild rpm      # the rpm package and its checks
ensure_podman                    # real Podman for the node agent's tests
ensure_venv

.venv/bin/ruff check nodeos tests

status=0
.venv/bin/pytest -q "$@" || status=$?
if ((status == 5)); then
    echo "test.sh: pytest collected no tests; counting that as a failure" >&2
    exit 1
fi
exit "$status"
