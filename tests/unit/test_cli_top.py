"""``nodeos top``: figures as it prints them."""

from __future__ import annotations

import pytest

from nodeos.cli.top import mebibytes, percent


@pytest.mark.parametrize(("used", "total", "text"), [(0, 4000, "0%"), (1000, 4000, "25%"), (3999, 4000, "99%"),
                                                     (5000, 4000, "125%"), (10, 0, "-")])
def test_percent(used, total, text):
    assert percent(used, total) == text


@pytest.mark.parametrize(("value", "text"), [(0, "0Mi"), (1, "1Mi"), (64 * 2**20, "64Mi"), (64 * 2**20 + 1, "65Mi")])
def test_mebibytes_round_up(value, text):
    assert mebibytes(value) == text


def test_metrics_usage_of_a_node_and_of_a_pods_containers():
    from nodeos.cli.top import metrics_usage

    assert metrics_usage({"usage": {"cpu": "1500001n", "memory": "2048Ki"}}) == (2, 2 * 2**20)  # CPU rounds up
    pod = {"containers": [{"usage": {"cpu": "250m", "memory": "1Mi"}}, {"usage": {"cpu": "1n", "memory": "10"}}]}
    assert metrics_usage(pod) == (251, 2**20 + 10)


def test_usage_cells_as_kubectl_prints_them():
    from nodeos.cli.top import node_usage_cells, usage_cells

    assert usage_cells((251, 3 * 2**20 - 1)) == ["251m", "2Mi"]  # memory in whole MiB, as kubectl
    assert usage_cells(None) == ["<unknown>", "<unknown>"]
    assert node_usage_cells((1000, 2**30), 4000, 2**32) == ["1000m", "25%", "1024Mi", "25%"]
    assert node_usage_cells(None, 4000, 2**32) == ["<unknown>"] * 4
