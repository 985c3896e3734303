"""Reusable validators, worded as Kubernetes words them.

Two layers, as in Kubernetes' ``util/validation``: ``is_*`` functions take a
string and return messages; ``validate_*`` functions take any JSON value and
a field path and return Causes. Every ``validate_*`` tolerates arbitrary
JSON, since the API feeds it untrusted bodies.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from nodeos.api.model._fields import (
    Causes,
    child,
    duplicate,
    forbidden,
    get_dicts,
    get_list,
    get_str,
    get_str_map,
    index,
    invalid,
    is_int,
    not_supported,
    required,
    too_long,
    wrong_type,
)

DNS1123_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + r")*"
DNS1035_LABEL_FMT = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
ENV_VAR_NAME_FMT = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
PERCENT_FMT = r"[0-9]+%"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
ANNOTATIONS_MAX_BYTES = 256 * 1024

PROTOCOLS = ("TCP", "UDP", "SCTP")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

_DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(DNS1035_LABEL_FMT)
_QUALIFIED_NAME = re.compile(QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)
_ENV_VAR_NAME = re.compile(ENV_VAR_NAME_FMT)
_PERCENT = re.compile(PERCENT_FMT)
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                      "or '-', and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
                       "and must start and end with an alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_ENV_VAR_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, "
                     "digits, '_', '-', or '.', and must not start with a digit")
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"

NameRule = Callable[[str], list[str]]


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    shown = "".join(f"'{e}', " for e in examples[:1]) + "".join(f"or '{e}', " for e in examples[1:])
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


# -- string checks, returning messages

def is_dns1123_label(value: str) -> list[str]:
    errs = [max_len_error(DNS1123_LABEL_MAX)] if len(value) > DNS1123_LABEL_MAX else []
    if not _DNS1123_LABEL.fullmatch(value):
        errs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_error(DNS1123_SUBDOMAIN_MAX)] if len(value) > DNS1123_SUBDOMAIN_MAX else []
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [max_len_error(DNS1123_LABEL_MAX)] if len(value) > DNS1123_LABEL_MAX else []
    if not _DNS1035_LABEL.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys, finalizers: ``[dns-subdomain/]name``."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT,
                                                  "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME.fullmatch(name):
        errs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc"))
    return errs


def is_label_value(value: str) -> list[str]:
    errs = [max_len_error(LABEL_VALUE_MAX)] if len(value) > LABEL_VALUE_MAX else []
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_env_var_name(value: str) -> list[str]:
    errs = []
    if not _ENV_VAR_NAME.fullmatch(value):
        errs.append(regex_error(_ENV_VAR_NAME_MSG, ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"))
    if value in (".", ".."):
        errs.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_port_name(value: str) -> list[str]:
    """IANA service names, as container and endpoint port names must be."""
    errs = [max_len_error(15)] if len(value) > 15 else []
    if not _PORT_NAME_CHARS.fullmatch(value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_percent(value: str) -> list[str]:
    if _PERCENT.fullmatch(value):
        return []
    return [regex_error(_PERCENT_MSG, PERCENT_FMT, "1%", "93%")]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP as Kubernetes accepts it (no zone, no leading zeros), or None."""
    if "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_ip(value: str) -> list[str]:
    return [] if parse_ip(value) else [IP_MSG]


def is_cidr(value: str) -> list[str]:
    msg = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    if "/" not in value or "%" in value:
        return [msg]
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [msg]
    return []


def mask_trailing_dash(name: str) -> str:
    """generateName prefixes may end in '-': check them as if they didn't."""
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


# -- validators over JSON values, returning causes

def validate_string(value: Any, path: str, rule: NameRule, *, required_: bool = False) -> Causes:
    """Apply a string rule (``is_dns1123_label``…) to a value of any JSON type."""
    if value is None or value == "":
        return [required(path)] if required_ else []
    if not isinstance(value, str):
        return [wrong_type(path, value, "a string")]
    return [invalid(path, value, m) for m in rule(value)]


def validate_dns1123_label(value: Any, path: str) -> Causes:
    return validate_string(value, path, is_dns1123_label)


def validate_dns1123_subdomain(value: Any, path: str) -> Causes:
    return validate_string(value, path, is_dns1123_subdomain)


def validate_qualified_name(value: Any, path: str) -> Causes:
    return validate_string(value, path, is_qualified_name)


def validate_labels(labels: Any, path: str) -> Causes:
    """Labels (and map selectors): errors point at the map, as Kubernetes' do."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [wrong_type(path, labels, "an object")]
    errs: Causes = []
    for k, v in labels.items():
        errs += [invalid(path, k, m) for m in is_qualified_name(k)]
        if isinstance(v, str):
            errs += [invalid(path, v, m) for m in is_label_value(v)]
        else:
            errs.append(wrong_type(path, v, "a string"))
    return errs


def validate_annotations(annotations: Any, path: str) -> Causes:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [wrong_type(path, annotations, "an object")]
    errs: Causes = []
    size = 0
    for k, v in annotations.items():
        errs += [invalid(path, k, m) for m in is_qualified_name(k.lower())]
        if not isinstance(v, str):
            errs.append(wrong_type(path, v, "a string"))
            v = ""
        size += _utf8_len(k) + _utf8_len(v)
    if size > ANNOTATIONS_MAX_BYTES:
        errs.append(too_long(path, ANNOTATIONS_MAX_BYTES))
    return errs


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def validate_label_selector(selector: Any, path: str) -> Causes:
    """A metav1.LabelSelector: matchLabels plus matchExpressions."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [wrong_type(path, selector, "an object")]
    errs = validate_labels(selector.get("matchLabels"), child(path, "matchLabels"))
    for req_path, req in get_dicts(selector, "matchExpressions", path, errs):
        operator = get_str(req, "operator", req_path, errs)
        values = get_list(req, "values", req_path, errs)
        values_path = child(req_path, "values")
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(required(values_path, "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(values_path,
                                      "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(child(req_path, "operator"), operator, "not a valid selector operator"))
        req_key = get_str(req, "key", req_path, errs)
        errs += [invalid(child(req_path, "key"), req_key, m) for m in is_qualified_name(req_key)]
        for i, value in enumerate(values):
            errs += validate_string(value, index(values_path, i), is_label_value)
    return errs


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a valid LabelSelector selects these labels. An empty selector
    matches everything; callers that forbid it check that first."""
    ignored: Causes = []
    for k, v in get_str_map(selector, "matchLabels", "", ignored).items():
        if labels.get(k) != v:
            return False
    for _, req in get_dicts(selector, "matchExpressions", "", ignored):
        k = get_str(req, "key", "", ignored)
        values = get_list(req, "values", "", ignored)
        match get_str(req, "operator", "", ignored):
            case "In":
                ok = k in labels and labels[k] in values
            case "NotIn":
                ok = k not in labels or labels[k] not in values
            case "Exists":
                ok = k in labels
            case "DoesNotExist":
                ok = k not in labels
            case _:
                ok = False
        if not ok:
            return False
    return True


def validate_port(value: Any, path: str, *, required_: bool = True) -> Causes:
    """A port number 1-65535 (0 or unset counts as unset)."""
    if value is None or (is_int(value) and value == 0):
        return [required(path)] if required_ else []
    if not is_int(value):
        return [wrong_type(path, value, "an integer")]
    return [] if 1 <= value <= 65535 else [invalid(path, value, PORT_RANGE_MSG)]


def validate_port_num_or_name(value: Any, path: str) -> Causes:
    """targetPort and probe ports: a number, or the name of a container port."""
    if isinstance(value, str):
        return [invalid(path, value, m) for m in is_port_name(value)]
    return validate_port(value, path)


def validate_protocol(value: Any, path: str) -> Causes:
    if value is None or value == "":
        return [required(path)]
    if not isinstance(value, str) or value not in PROTOCOLS:
        return [not_supported(path, value, PROTOCOLS)]
    return []


def validate_enum(value: Any, path: str, supported: tuple[str, ...], *, required_: bool = False) -> Causes:
    if value is None or value == "":
        return [required(path)] if required_ else []
    if not isinstance(value, str) or value not in supported:
        return [not_supported(path, value, supported)]
    return []


def validate_non_negative(value: Any, path: str) -> Causes:
    """A non-negative integer; unset is fine (it has a default)."""
    if value is None:
        return []
    if not is_int(value):
        return [wrong_type(path, value, "an integer")]
    return [] if value >= 0 else [invalid(path, value, "must be greater than or equal to 0")]


def validate_required(obj: Any, name: str, path: str) -> Causes:
    """A field that must be present and non-empty ("", [], {} and null count as unset)."""
    value = obj.get(name) if isinstance(obj, dict) else None
    if value is None or value in ("", [], {}):
        return [required(child(path, name))]
    return []


def validate_ip(value: Any, path: str) -> Causes:
    return validate_string(value, path, is_ip)


def validate_unique_names(names: list[tuple[str, str]]) -> Causes:
    """(path, name) pairs in order: every repeat is a Duplicate at its path."""
    seen: set[str] = set()
    errs: Causes = []
    for path, name in names:
        if name in seen:
            errs.append(duplicate(path, name))
        seen.add(name)
    return errs
