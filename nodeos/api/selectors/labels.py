"""Label selectors: the ``labels.Parse`` query syntax and ``metav1.LabelSelector`` objects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nodeos.errors import ApiError, Cause

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME)
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


def label_key_error(key: str) -> str | None:
    """Why ``key`` is not a valid label key (a qualified name), or None if it is."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "prefix part must be non-empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _NAME_RE.fullmatch(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                "and end with an alphanumeric character")
    return None


def label_value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None if it is (empty is valid)."""
    if len(value) > 63:
        return "must be no more than 63 characters"
    if value and not _NAME_RE.fullmatch(value):
        return ("a valid label must be an empty string or consist of alphanumeric characters, '-', "
                "'_' or '.', and must start and end with an alphanumeric character")
    return None


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key op values``.

    ``op`` is one of ``OPERATORS``: ``exists`` is a bare key, ``!`` is ``!key``,
    ``gt``/``lt`` compare integers. ``values`` is sorted, as Kubernetes keeps it.
    """

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        value = value if isinstance(value, str) else None
        if self.op in ("=", "==", "in"):
            return value is not None and value in self.values
        if self.op in ("!=", "notin"):
            return value is None or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        number = _int_or_none(value)
        if number is None:
            return False
        limit = int(self.values[0])
        return number > limit if self.op == "gt" else number < limit

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{symbol}{self.values[0]}"


def _int_or_none(value: str | None) -> int | None:
    if value is None or not re.fullmatch(r"[-+]?[0-9]+", value):
        return None
    return int(value)


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; ``nothing`` marks the selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector selects everything (no requirement at all)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, Any] | None) -> bool:
        if self.nothing:
            return False
        labels = labels if isinstance(labels, Mapping) else {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        """Kubernetes' canonical form, e.g. ``app=web,tier in (be,fe)``; "" selects everything."""
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _selector(requirements: list[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def _checked(key: str, op: str, values: list[str]) -> Requirement:
    """Validate one parsed requirement as ``labels.NewRequirement`` does."""
    if (why := label_key_error(key)) is not None:
        raise _parse_error(f'key: Invalid value: "{key}": {why}')
    if op in ("in", "notin") and not values:
        raise _parse_error("for 'in', 'notin' operators, values set can't be empty")
    if op in ("gt", "lt"):
        if len(values) != 1 or _int_or_none(values[0]) is None:
            raise _parse_error(f"for 'Gt', 'Lt' operators, the value must be an integer: {values}")
    else:
        for i, value in enumerate(values):
            if (why := label_value_error(value)) is not None:
                raise _parse_error(f'values[{i}][{key}]: Invalid value: "{value}": {why}')
    return Requirement(key, op, tuple(sorted(set(values))))


def _parse_error(message: str) -> ApiError:
    return ApiError.bad_request(f"unable to parse requirement: {message}")


# Operators, parentheses and commas; anything else up to one of them or a space is an identifier.
_TOKEN_RE = re.compile(r"!=|==|=|!|\(|\)|,|>|<|[^\s!=(),<>]+")
_SYMBOLS = frozenset({"!=", "==", "=", "!", "(", ")", ",", ">", "<"})
_END = ""  # what reading past the last token gives


class _Tokens:
    """The tokens of a selector string, read one at a time; whitespace only separates."""

    def __init__(self, text: str) -> None:
        self.items: list[str] = _TOKEN_RE.findall(text)
        self.pos = 0

    def peek(self) -> str:
        return self.items[self.pos] if self.pos < len(self.items) else _END

    def take(self) -> str:
        token = self.peek()
        self.pos += 1
        return token


def _is_identifier(token: str) -> bool:
    return token != _END and token not in _SYMBOLS


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the query-string syntax: ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3``."""
    if not isinstance(text, str):
        raise ApiError.bad_request("label selector must be a string")
    tokens = _Tokens(text)
    requirements: list[Requirement] = []
    while tokens.peek() != _END:
        requirements.append(_requirement(tokens))
        after = tokens.take()
        if after not in (",", _END):
            raise _parse_error(f"found '{after}', expected: ',' or 'end of string'")
        if after == "," and tokens.peek() == _END:
            raise ApiError.bad_request("found '', expected: identifier after ','")
    return _selector(requirements)


def _requirement(tokens: _Tokens) -> Requirement:
    if tokens.peek() == "!":
        tokens.take()
        key = tokens.take()
        if not _is_identifier(key):
            raise _parse_error(f"found '{key}', expected: identifier")
        return _checked(key, "!", [])
    key = tokens.take()
    if not _is_identifier(key):
        raise ApiError.bad_request(f"found '{key}', expected: !, identifier, or 'end of string'")
    op = tokens.peek()
    if op in (_END, ","):
        return _checked(key, "exists", [])
    tokens.take()
    if op in ("in", "notin"):
        return _checked(key, op, _paren_values(tokens))
    if op in ("=", "==", "!=", ">", "<"):
        value = ""  # ``a=`` means the empty value
        if _is_identifier(tokens.peek()):
            value = tokens.take()
        elif tokens.peek() not in (_END, ","):
            raise _parse_error(f"found '{tokens.peek()}', expected: identifier")
        return _checked(key, {">": "gt", "<": "lt"}.get(op, op), [value])
    raise _parse_error(f"found '{op}', expected: in, notin, =, ==, !=, gt, lt")


def _paren_values(tokens: _Tokens) -> list[str]:
    """``( v1, v2 )``; empty members are empty strings, as Kubernetes reads ``(a,)``."""
    if (token := tokens.take()) != "(":
        raise _parse_error(f"found '{token}', expected: '('")
    values: list[str] = []
    expect_value = True
    while True:
        token = tokens.take()
        if token == ")":
            if expect_value:
                values.append("")
            return values
        if token == ",":
            if expect_value:
                values.append("")
            expect_value = True
        elif _is_identifier(token) and expect_value:
            values.append(token)
            expect_value = False
        else:
            raise _parse_error(f"found '{token}', expected: ',' or ')'")


_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_dict(d: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a ``metav1.LabelSelector``: None matches nothing, ``{}`` matches everything.

    Invalid content raises a 422 ``ApiError`` whose causes name fields
    relative to the selector (``matchExpressions[0].operator``), for the
    caller to prefix with where the selector sits.
    """
    if d is None:
        return NOTHING
    if not isinstance(d, Mapping):
        raise _invalid("", "must be an object")
    match_labels = d.get("matchLabels") or {}
    expressions = d.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise _invalid("matchLabels", "must be a map of strings")
    if not isinstance(expressions, list):
        raise _invalid("matchExpressions", "must be a list")
    requirements: list[Requirement] = []
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise _invalid(f"matchLabels[{key}]", "must be a string")
        requirements.append(_valid(key, "=", [value], "matchLabels"))
    for i, expression in enumerate(expressions):
        where = f"matchExpressions[{i}]"
        if not isinstance(expression, Mapping):
            raise _invalid(where, "must be an object")
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if not isinstance(key, str):
            raise _invalid(f"{where}.key", "Required value")
        if operator not in _EXPRESSION_OPERATORS:
            raise _invalid(f"{where}.operator", f'Unsupported value: "{operator}": supported values: '
                           '"In", "NotIn", "Exists", "DoesNotExist"')
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _invalid(f"{where}.values", "must be a list of strings")
        op = _EXPRESSION_OPERATORS[operator]
        if op in ("in", "notin") and not values:
            raise _invalid(f"{where}.values", "Required value: must be specified when `operator` is 'In' "
                           "or 'NotIn'")
        if op in ("exists", "!") and values:
            raise _invalid(f"{where}.values", "Forbidden: may not be specified when `operator` is 'Exists' "
                           "or 'DoesNotExist'")
        requirements.append(_valid(key, op, values, where))
    return _selector(requirements)


def _valid(key: str, op: str, values: list[str], where: str) -> Requirement:
    if (why := label_key_error(key)) is not None:
        raise _invalid(f"{where}.key" if where != "matchLabels" else where, f'Invalid value: "{key}": {why}')
    for value in values:
        if (why := label_value_error(value)) is not None:
            raise _invalid(f"{where}.values" if where != "matchLabels" else f"{where}[{key}]",
                           f'Invalid value: "{value}": {why}')
    return Requirement(key, op, tuple(sorted(set(values))))


def _invalid(field: str, message: str) -> ApiError:
    cause = Cause(field or "<selector>", message)
    return ApiError(422, "Invalid", f"invalid label selector: {cause.as_dict()['message']}",
                    {"causes": [cause.as_dict()]})
