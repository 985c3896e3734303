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
