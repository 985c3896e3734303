from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

import pytest

from tests.daemon import Daemon

KUBECTL = shutil.which("kubectl")


@pytest.fixture
def kubectl(daemon: Daemon, tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the real kubectl against the shared daemon, with a fresh discovery cache."""
    if KUBECTL is None:
        pytest.fail("kubectl is not installed; it is part of the test environment")
    kubeconfig = daemon.kubeconfig()

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        cmd = [KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'kube-cache'}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run
