"""Bootstrap tokens: the one-time credential a new host joins the cluster with.

The format and the storage are kubeadm's: a token is ``ID.SECRET``
(``[a-z0-9]{6}.[a-z0-9]{16}``), kept as a Secret ``bootstrap-token-<ID>`` in
``kube-system`` of type ``bootstrap.kubernetes.io/token`` with ``token-id``,
``expiration`` (RFC 3339), ``usage-bootstrap-authentication: "true"`` and
``description``. Its user is ``system:bootstrap:<ID>`` in the group
``system:bootstrappers``.

Two deliberate differences from kubeadm:

- The secret half is stored only as its SHA-256 (``token-secret-sha256``),
  not in clear (kubeadm's ``token-secret``). A Secret is readable by every
  administrator and every backup of the store; reading one must not hand
  out joins. The secret is 16 random characters of 36 (~82 bits), so an
  unsalted hash has no dictionary to be tried against.
- A token is single-use: the join consumes it (``consume``) with a
  compare-and-swap on the Secret, marking it ``used-by`` the node. Two joins
  racing with one token: exactly one wins the swap, the other gets 401.

The state lives in the store, not in a master's memory, so any master of an
etcd-backed cluster authenticates and consumes any token. Everything reads
the watch cache; on a shared store a token not found yet is looked for again
after the cache caught up (a token just created through another master).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nodeos.api.auth.user import User, authenticated
from nodeos.api.kinds import Resource, by_plural
from nodeos.errors import ApiError

if TYPE_CHECKING:
    from nodeos.api.registry import Registry

__all__ = ["BOOTSTRAP_GROUP", "NAMESPACE", "SECRET_TYPE", "BootstrapToken", "BootstrapTokens", "TokenState",
           "is_bootstrap_token", "new_token", "parse_token", "secret_name", "token_secret", "token_state"]

TOKEN_PATTERN = re.compile(r"([a-z0-9]{6})\.([a-z0-9]{16})")
NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
BOOTSTRAP_GROUP = "system:bootstrappers"
USER_PREFIX = "system:bootstrap:"
_ALPHABET = string.ascii_lowercase + string.digits


def _served(plural: str) -> Resource:
    resource = by_plural("", "v1", plural)
    assert resource is not None, plural
    return resource


SECRETS = _served("secrets")
CONFIG_MAPS = _served("configmaps")


@dataclass(frozen=True)
class BootstrapToken:
    id: str
    secret: str = ""

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}"

    @property
    def user(self) -> str:
        return USER_PREFIX + self.id


def is_bootstrap_token(text: str) -> bool:
    return TOKEN_PATTERN.fullmatch(text) is not None


def parse_token(text: str) -> BootstrapToken:
    """The token in ``text``; ValueError (one line, the secret not repeated) when it has not the shape."""
    match = TOKEN_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError("a bootstrap token has the form [a-z0-9]{6}.[a-z0-9]{16}, e.g. abcdef.0123456789abcdef")
    return BootstrapToken(match[1], match[2])


def new_token() -> BootstrapToken:
    def chars(n: int) -> str:
        return "".join(secrets.choice(_ALPHABET) for _ in range(n))
    return BootstrapToken(chars(6), chars(16))


def secret_name(token_id: str) -> str:
    return SECRET_PREFIX + token_id


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_secret(token: BootstrapToken, ttl: dt.timedelta | None, description: str = "",
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """The Secret that stands for ``token`` (no TTL: it never expires), as ``stringData`` for the server to fold."""
    fields = {"token-id": token.id, "token-secret-sha256": secret_hash(token.secret),
              "usage-bootstrap-authentication": "true"}
    if ttl is not None:
        fields["expiration"] = rfc3339((now or dt.datetime.now(dt.UTC)) + ttl)
    if description:
        fields["description"] = description
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": secret_name(token.id), "namespace": NAMESPACE}, "stringData": fields}


@dataclass(frozen=True)
class TokenState:
    """What ``nodeos token list`` shows of a token's Secret; never its secret."""

    id: str
    expires: dt.datetime | None
    used_by: str
    description: str
    secret_sha256: str
    usable_for_authentication: bool

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or dt.datetime.now(dt.UTC))

    def refusal(self, now: dt.datetime | None = None) -> str | None:
        """Why the token cannot log in any more, or None."""
        if not self.usable_for_authentication:
            return "not for authentication"
        if self.used_by:
            return f"already used by node {self.used_by}"
        if self.expired(now):
            return "expired"
        return None


def token_state(secret: dict[str, Any]) -> TokenState | None:
    """The token a Secret stands for; None if it is not a well-formed bootstrap-token Secret."""
    if secret.get("type") != SECRET_TYPE:
        return None
    data = {k: _decoded(v) for k, v in (secret.get("data") or {}).items()}
    token_id = data.get("token-id") or ""
    if secret_name(token_id) != (secret.get("metadata") or {}).get("name") or not re.fullmatch(r"[a-z0-9]{6}",
                                                                                                token_id):
        return None
    expires = None
    if data.get("expiration"):
        try:
            expires = dt.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
        except ValueError:
            expires = dt.datetime.min.replace(tzinfo=dt.UTC)  # unreadable: treat as expired, never as eternal
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
    return TokenState(token_id, expires, data.get("used-by", ""), data.get("description", ""),
                      data.get("token-secret-sha256", ""), data.get("usage-bootstrap-authentication") == "true")


def _decoded(value: Any) -> str:
    try:
        return base64.b64decode(str(value)).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


class BootstrapTokens:
    """Authenticates and consumes bootstrap tokens against their Secrets, through the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def user(self, text: str) -> User | None:
        """The token's user, or None: unknown, wrong secret, expired, used, or not for authentication."""
        token = parse_token(text)
        state = await self._state(token.id)
        if state is None or state.refusal() is not None:
            return None
        if not hmac.compare_digest(state.secret_sha256, secret_hash(token.secret)):
            return None
        return authenticated(token.user, (BOOTSTRAP_GROUP,))

    async def consume(self, token_id: str, node: str) -> None:
        """Mark the token used by ``node`` — a compare-and-swap, so of two racing joins one wins.

        ApiError 401 when it cannot be used (any more): the loser of a race, an expired or used token.
        """
        await self.registry.sync()
        try:
            cached = self.registry.get(SECRETS, NAMESPACE, secret_name(token_id))
        except ApiError:
            raise _refused(token_id, "no such token") from None
        state = token_state(cached.obj)
        reason = "not a bootstrap token" if state is None else state.refusal()
        if reason is not None:
            raise _refused(token_id, reason)
        secret = dict(cached.obj)
        secret["metadata"] = {**secret["metadata"], "resourceVersion": str(cached.revision)}
        stamp = {"used-by": node, "used-at": rfc3339(dt.datetime.now(dt.UTC))}
        secret["data"] = {**secret["data"], **{k: base64.b64encode(v.encode()).decode() for k, v in stamp.items()}}
        try:
            await self.registry.update(SECRETS, NAMESPACE, secret_name(token_id), secret)
        except ApiError as exc:
            if exc.code in (404, 409):  # deleted meanwhile, or another join won the swap
                raise _refused(token_id, "used by another join at the same time") from None
            raise

    async def _state(self, token_id: str) -> TokenState | None:
        key = SECRETS.store_key(NAMESPACE, secret_name(token_id))
        cached = self.registry.cache.get(key)
        if cached is None and self.registry.shared:
            await self.registry.sync()
            cached = self.registry.cache.get(key)
        return None if cached is None else token_state(cached.obj)


def _refused(token_id: str, reason: str) -> ApiError:
    return ApiError(401, "Unauthorized", f"bootstrap token {token_id}: {reason}")
