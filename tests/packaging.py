"""The deb built by ``packaging/build.sh`` and a clean Debian tree to install it in, for the package tests.

The tree is a ``debootstrap --variant=minbase`` Debian 12 with systemd, as
on a real host, cached in ``/var/tmp/nodeos-test-rootfs-<date>`` (a fresh
machine pays the debootstrap, about 25 s against a near mirror; older days'
trees are removed). Installing the deb there with ``apt-get`` pulls podman,
nftables, iproute2 and python3.11 from the mirror. Commands run in the tree
through ``chroot`` with the tree's own environment (``CHROOT_ENV``).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "packaging" / "build.sh"
MIRROR = os.environ.get("NODEOS_TEST_MIRROR", "http://deb.debian.org/debian")
ROOTFS_PREFIX = "nodeos-test-rootfs-"
# The tree's own environment: nothing of this host's (SSL_CERT_FILE, PIP_*, a pyenv PATH) leaks in.
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
              "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


def run(*argv: str | Path, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def build(kind: str, dist: Path, **env: str) -> Path:
    done = run(BUILD, kind, env={**os.environ, "DIST": str(dist), **env})
    package = Path(done.stdout.strip().splitlines()[-1])
    assert package.parent == dist and package.exists()
    return package


def rootfs_cache() -> Path:
    """A minimal Debian 12 with systemd and fresh package lists, built once a day (skips without root or tools)."""
    if os.geteuid() != 0:
        pytest.skip("installing into a chroot needs root")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (apt-get install debootstrap)")
    cache = Path("/var/tmp") / f"{ROOTFS_PREFIX}{datetime.date.today():%Y%m%d}"
    if (cache / ".complete").exists():
        return cache
    for old in Path("/var/tmp").glob(f"{ROOTFS_PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)
    partial = cache.with_name(cache.name + ".partial")
    done = run("debootstrap", "--variant=minbase", "--include=systemd", "bookworm", partial, MIRROR, check=False)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        pytest.skip(f"debootstrap from {MIRROR} failed: {done.stderr.strip().splitlines()[-1:]}")
    run("chroot", partial, "apt-get", "update", "-q", env=CHROOT_ENV)
    (partial / ".complete").touch()
    partial.rename(cache)
    return cache


def fresh_root(cache: Path, where: Path) -> Path:
    root = where / "root"
    run("cp", "-a", cache, root)
    return root


def in_root(root: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run in the tree, with its own /proc (a private mount and pid namespace: nothing to unmount)."""
    return run("unshare", "--mount", "--pid", "--fork", f"--mount-proc={root}/proc", "chroot", root, *argv,
               check=check, env=CHROOT_ENV)


def apt_install(root: Path, *packages: Path | str) -> subprocess.CompletedProcess[str]:
    """apt-get install in the tree: package files (copied in) or names from the mirror."""
    names = []
    for package in packages:
        if isinstance(package, Path):
            shutil.copy(package, root / "tmp" / package.name)
            package = f"/tmp/{package.name}"
        names.append(package)
    return in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *names)
