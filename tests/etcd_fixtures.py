"""Pytest fixtures for real etcd: import the ones a module needs.

    from tests.etcd_fixtures import etcd_single, etcd_three  # noqa: F401

``etcd_single`` is one member shared by a module (tests keep apart by using
their own key prefix); ``etcd_three`` is a fresh three-member cluster per test,
because those tests kill members.
"""

from __future__ import annotations

import pytest

from tests.etcd import EtcdCluster


@pytest.fixture(scope="module")
def etcd_single(tmp_path_factory):
    with EtcdCluster(tmp_path_factory.mktemp("etcd"), members=1) as cluster:
        yield cluster


@pytest.fixture
def etcd_three(tmp_path):
    with EtcdCluster(tmp_path / "etcd", members=3) as cluster:
        yield cluster
