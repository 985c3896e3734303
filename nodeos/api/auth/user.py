"""The authenticated user, as authorization will see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    """A user name, its groups (Kubernetes' ``system:authenticated`` among them once authenticated) and a uid."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))
# The insecure port's caller: whoever can reach loopback already owns the host.
INSECURE_USER = User("system:unsecured", ("system:masters", "system:authenticated"))


def authenticated(name: str, groups: tuple[str, ...], uid: str = "") -> User:
    """A user with ``system:authenticated`` added to its groups, as kube-apiserver does."""
    return User(name, (*dict.fromkeys(g for g in groups if g != "system:authenticated"), "system:authenticated"),
                uid)
