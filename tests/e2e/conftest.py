from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from tests.daemon import Daemon
from tests.kubectl import run_kubectl


@pytest.fixture
def kubectl(daemon: Daemon, tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real kubectl against the shared daemon, with a fresh discovery cache."""
    kubeconfig = daemon.kubeconfig()

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        return run_kubectl(kubeconfig, tmp_path / "kube-cache", *args, input=input, check=check, timeout=timeout)

    return run
