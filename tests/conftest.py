from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon import Daemon


@pytest.fixture(scope="session")
def daemon(tmp_path_factory) -> Daemon:
    """One master shared by the tests that only create their own objects."""
    d = Daemon(tmp_path_factory.mktemp("nodeos")).start()
    yield d
    d.stop()


@pytest.fixture
def fresh_daemon(tmp_path) -> Daemon:
    """A master of the test's own, for tests that kill or restart it."""
    d = Daemon(tmp_path / "nodeos")
    yield d
    d.stop()


@pytest.fixture
async def api(tmp_path):
    """An ApiClient connected to a real API server running in this test's trio run."""
    from tests.apiserver import running_api

    async with running_api(tmp_path / "api") as client:
        yield client


@pytest.fixture(scope="session")
def test_image() -> str:
    """The busybox test image, built locally (these machines cannot pull)."""
    from tests.podman import ensure_test_image

    return ensure_test_image()


@pytest.fixture(scope="session")
def podman_socket(tmp_path_factory):
    """A libpod API service of the test session's own; yields its socket path."""
    from tests.podman import PodmanService

    service = PodmanService(tmp_path_factory.mktemp("podman") / "podman.sock").start()
    yield service.socket
    service.stop()


@pytest.fixture(scope="session")
def podman_node(tmp_path_factory, podman_socket, test_image):
    """An all-in-one daemon running pods on the session's Podman; tests keep to namespaces of their own."""
    from tests.podnode import PodmanNode

    node = PodmanNode(tmp_path_factory.mktemp("podnode"), podman_socket).start()
    yield node
    node.stop()


@pytest.fixture
def podman_ns():
    """A namespace name of the test's own for containers made by hand; what carries it is removed after."""
    import uuid

    from nodeos.agent.podman import labels
    from tests.podman import remove_labelled

    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    remove_labelled(f"{labels.POD_NAMESPACE}={name}")


@pytest.fixture(scope="session")
def deb(tmp_path_factory) -> Path:
    """The deb of this tree, built once per session (about 20 s) by packaging/build.sh."""
    import shutil

    from tests.packaging import build

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    return build("deb", tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def rootfs_cache() -> Path:
    """A clean Debian 12 tree to copy and install packages into (tests.packaging)."""
    from tests.packaging import rootfs_cache as cached

    return cached()
