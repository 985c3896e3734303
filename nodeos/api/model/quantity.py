"""Kubernetes resource quantities (``500m``, ``128Mi``, ``1e3``) as exact decimals.

Decimal, not float, because quantities are compared for equality (QoS class,
requests against limits) and ``0.1 + 0.2`` must equal ``300m``.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal

__all__ = ["parse_quantity"]

QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)")
_EXPONENT = re.compile(r"[eE]([-+]?[0-9]+)")
_FORMAT_ERROR = f"quantities must match the regular expression '{QUANTITY_REGEX}'"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# Far beyond any real quantity; keeps Decimal clear of overflow traps.
_MAX_EXPONENT = 1000


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity; JSON numbers are accepted as Kubernetes
    accepts them (``cpu: 1``). Raises ValueError on anything else."""
    if isinstance(value, bool):
        raise ValueError(_FORMAT_ERROR)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(_FORMAT_ERROR)
        value = repr(value)
    if not isinstance(value, str):
        raise ValueError(_FORMAT_ERROR)
    match = _QUANTITY.fullmatch(value)
    if not match:
        raise ValueError(_FORMAT_ERROR)
    number, suffix = match.groups()
    digits = number.lstrip("+-")
    if digits.count(".") > 1 or digits == ".":
        raise ValueError(_FORMAT_ERROR)
    mantissa = Decimal(number)
    with decimal.localcontext() as ctx:
        ctx.prec = 64
        if suffix in _BINARY:
            return mantissa * (2 ** _BINARY[suffix])
        return mantissa.scaleb(_decimal_exponent(suffix))


def _decimal_exponent(suffix: str) -> int:
    if suffix in _DECIMAL:
        return _DECIMAL[suffix]
    match = _EXPONENT.fullmatch(suffix)
    if not match:
        raise ValueError("unable to parse quantity's suffix")
    digits = match.group(1).lstrip("+-").lstrip("0")
    if len(digits) > len(str(_MAX_EXPONENT)) or abs(int(match.group(1))) > _MAX_EXPONENT:
        raise ValueError("quantity is out of range")
    return int(match.group(1))
