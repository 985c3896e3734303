"""The token file: bearer tokens, stored as their SHA-256 so the file gives no one a login.

One token a line, like kube-apiserver's ``--token-auth-file`` but hashed::

    # hash, user, uid, groups (quoted: they are comma separated)
    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08,alice,u-1,"dev,ops"

Tokens are random (``new_token``: 32 bytes, URL-safe), so one unsalted hash
suffices: there is no dictionary to try against it. The file is read again
when it changes, so adding or removing a line needs no restart.
"""

from __future__ import annotations

import csv
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from nodeos.api.auth.user import User, authenticated
from nodeos.errors import ConfigError

PREFIX = "sha256:"


class TokenFileError(ConfigError):
    """A token file that cannot be read or has a malformed line; the message names the file and line."""


def hash_token(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def parse_tokens(path: Path, text: str) -> dict[str, User]:
    """The users by token hash; TokenFileError for the first bad line."""
    users: dict[str, User] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(row) < 2 or len(row) > 4:
            raise TokenFileError(f"{where}: expected sha256:HASH,user[,uid[,\"group1,group2\"]]")
        digest, user = row[0].strip(), row[1].strip()
        hexpart = digest.removeprefix(PREFIX)
        if not digest.startswith(PREFIX) or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
            raise TokenFileError(f"{where}: the token must be stored as sha256:<64 hex digits>, not in clear")
        if not user:
            raise TokenFileError(f"{where}: the user name is empty")
        uid = row[2].strip() if len(row) > 2 else ""
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        users[digest] = authenticated(user, groups, uid)
    return users


def add_token(path: Path, user: str, groups: tuple[str, ...] = (), uid: str = "") -> str:
    """Append a new token for ``user`` to the file (made 0600 if new) and return the token in clear."""
    if not user or any(c in user for c in ',"\n'):
        raise TokenFileError(f"{user!r}: not a user name for the token file")
    token = new_token()
    line = f'{hash_token(token)},{user},{uid},"{",".join(groups)}"\n'
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as file:
            file.write(line)
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot write: {exc.strerror}") from None
    return token


@dataclass
class TokenFile:
    """The token file's users, read again when its modification time or size changes."""

    path: Path
    _users: dict[str, User] = field(default_factory=dict)
    _seen: tuple[int, int] | None = None

    def refresh(self) -> None:
        """Read the file if it changed; an absent file means no tokens. Blocks: call it from a thread."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._users, self._seen = {}, None
            return
        except OSError as exc:
            raise TokenFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        if self._seen == (stat.st_mtime_ns, stat.st_size):
            return
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{self.path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        self._users = parse_tokens(self.path, text)
        self._seen = (stat.st_mtime_ns, stat.st_size)

    def user(self, token: str) -> User | None:
        return self._users.get(hash_token(token))
