"""The policy file: the operator's bindings of roles to users and groups, in TOML.

::

    # <data_dir>/policy.toml, or [api] policy_file
    [[bind]]
    role = "view"              # admin, edit or view
    users = ["alice"]
    groups = ["dev"]
    namespaces = ["team-a"]    # optional: the binding holds in these namespaces only

A binding without ``namespaces`` holds everywhere (a ClusterRoleBinding);
with them, only for requests in those namespaces (RoleBindings), so a
namespace-limited ``view`` cannot list across namespaces nor read nodes.
An absent file means the built-in bindings only. The file is read again
when it changes, so editing it needs no restart; a broken edit keeps the
last good policy (the caller logs why). Errors name the file, the line and
the key on one line, because that line is all an operator sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodeos.api.auth import User
from nodeos.api.authz.roles import BINDABLE
from nodeos.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

KEYS = ("role", "users", "groups", "namespaces")
_BIND_HEADER = re.compile(r"^\s*\[\[\s*bind\s*\]\]")


class PolicyError(ConfigError):
    """A policy file that cannot be read or does not parse; the message names the file, line and key."""


@dataclass(frozen=True)
class Binding:
    role: str
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    namespaces: frozenset[str] | None = None  # None: every namespace, and cluster-scoped objects

    def binds(self, user: User) -> bool:
        return user.name in self.users or not self.groups.isdisjoint(user.groups)

    def holds_in(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces


def parse_policy(path: Path, text: str) -> tuple[Binding, ...]:
    """The bindings of a policy file's text; PolicyError naming ``path:line`` for the first mistake."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, text, exc) from None
    for key in document:
        if key != "bind":
            raise PolicyError(f"{path}:{_line_of(text, key)}: unknown key {key!r}: "
                              "the policy has [[bind]] tables only")
    tables = document.get("bind", [])
    if not isinstance(tables, list):
        raise PolicyError(f"{path}:{_line_of(text, 'bind')}: bind must be [[bind]] tables")
    headers = [n for n, line in enumerate(text.splitlines(), start=1) if _BIND_HEADER.match(line)]
    return tuple(_binding(table, _Where(path, text, headers, index)) for index, table in enumerate(tables))


@dataclass(frozen=True)
class _Where:
    """Where the ``index``-th [[bind]] is, to name a key's line in an error."""

    path: Path
    text: str
    headers: list[int]
    index: int

    def error(self, key: str | None, message: str) -> PolicyError:
        start = self.headers[self.index] if self.index < len(self.headers) else 0
        end = self.headers[self.index + 1] if self.index + 1 < len(self.headers) else None
        line = start
        if key is not None:
            line = _line_of(self.text, key, start, end) or start
        where = f"{self.path}:{line}" if line else str(self.path)
        label = f"bind #{self.index + 1}" + (f" {key}" if key else "")
        return PolicyError(f"{where}: {label}: {message}")


def _binding(table: Any, where: _Where) -> Binding:
    if not isinstance(table, dict):
        raise where.error(None, "must be a table")
    for key in table:
        if key not in KEYS:
            raise where.error(key, f"unknown key; a binding has {', '.join(KEYS)}")
    role = table.get("role")
    if role is None:
        raise where.error(None, f"role is missing: one of {', '.join(BINDABLE)}")
    if role not in BINDABLE:
        raise where.error("role", f"{role!r} is not a role: one of {', '.join(BINDABLE)}")
    users, groups = _names(table, "users", where), _names(table, "groups", where)
    if not users and not groups:
        raise where.error(None, "binds no one: give users, groups or both")
    namespaces = None
    if "namespaces" in table:
        namespaces = _names(table, "namespaces", where)
        if not namespaces:
            raise where.error("namespaces", "is empty: leave it out to bind in every namespace")
    return Binding(role, users, groups, namespaces)


def _names(table: dict[str, Any], key: str, where: _Where) -> frozenset[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise where.error(key, "must be a list of non-empty strings")
    return frozenset(v.strip() for v in value)


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> PolicyError:
    """TOML's message as ``file:line: message``: "(at line 3, column 5)" or "(at end of document)" becomes the line."""
    message = str(exc)
    at = re.search(r"\s*\(at (?:line (\d+), column \d+|end of document)\)$", message)
    if at is None:
        return PolicyError(f"{path}: {message}")
    line = at.group(1) or str(max(1, len(text.splitlines())))
    return PolicyError(f"{path}:{line}: {message[:at.start()]}")


def _line_of(text: str, key: str, start: int = 0, end: int | None = None) -> int:
    """The line number of ``key = ...`` (or ``[key]``) between lines ``start`` and ``end``; 0 if not found."""
    pattern = re.compile(rf"^\s*(\[+\s*)?[\"']?{re.escape(key)}[\"']?\s*(=|\])")
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start and (end is None or number < end) and pattern.match(line):
            return number
    return 0


@dataclass
class PolicyFile:
    """The policy file's bindings, read again when its modification time or size changes."""

    path: Path
    bindings: tuple[Binding, ...] = ()
    _seen: tuple[int, int] | None = field(default=None, repr=False)

    def refresh(self) -> bool:
        """Read the file if it changed; True if it did. An absent file means no bindings.

        Blocks: call it from a thread. On a PolicyError the bindings read
        before stay, and the same broken file is not reported again.
        """
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            changed = self._seen is not None
            self.bindings, self._seen = (), None
            return changed
        except OSError as exc:
            raise PolicyError(f"{self.path}: cannot read: {exc.strerror}") from None
        seen = (stat.st_mtime_ns, stat.st_size)
        if self._seen == seen:
            return False
        self._seen = seen
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{self.path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        self.bindings = parse_policy(self.path, text)
        return True
