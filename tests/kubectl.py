"""Running the real kubectl from tests: one way, with a fresh discovery cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

KUBECTL = shutil.which("kubectl")


def run_kubectl(kubeconfig: Path, cache_dir: Path, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60, context: str = "") -> subprocess.CompletedProcess:
    """Run kubectl; with ``check``, a non-zero exit fails the test, showing its
    output and ``context`` (daemon logs, say)."""
    if KUBECTL is None:
        pytest.fail("kubectl is not installed; it is part of the test environment")
    cmd = [KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache_dir}", *args]
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}\n{context}")
    return result
