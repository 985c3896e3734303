from decimal import Decimal

import pytest

from nodeos.api.model.quantity import parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("500m", "0.5"), ("1", "1"), ("0.5", "0.5"), ("128Mi", 128 * 2**20), ("1.5Gi", 3 * 2**29),
    ("1e3", "1000"), ("1E3", "1000"), ("1e-3", "0.001"), ("2k", "2000"), ("1M", "1000000"),
    ("1Ki", 1024), ("1Ti", 2**40), ("1Pi", 2**50), ("1Ei", 2**60), ("3n", "3e-9"), ("3u", "3e-6"),
    ("1G", "1e9"), ("1T", "1e12"), ("1P", "1e15"), ("1E", "1e18"), ("-1", "-1"), ("+2", "2"),
    (".5", "0.5"), ("0", "0"),
])
def test_parses_kubernetes_quantities(text, value):
    assert parse_quantity(text) == Decimal(value)


def test_json_numbers_are_quantities():
    assert parse_quantity(2) == 2
    assert parse_quantity(0.25) == Decimal("0.25")


def test_exact_arithmetic():
    assert parse_quantity("100m") + parse_quantity("200m") == parse_quantity("0.3")


@pytest.mark.parametrize("text", ["", "abc", "1K", "1kb", "1.2.3", "1 Gi", "Gi", "1e", "1i", "1Gi\n", ".", "--1"])
def test_rejects_bad_quantities(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_message_names_the_regular_expression():
    with pytest.raises(ValueError, match=r"quantities must match the regular expression '\^\(\[\+-\]"):
        parse_quantity("one")


@pytest.mark.parametrize("value", [True, None, [], {}, float("nan"), float("inf"), "1e99999999"])
def test_rejects_non_quantities(value):
    with pytest.raises(ValueError):
        parse_quantity(value)
