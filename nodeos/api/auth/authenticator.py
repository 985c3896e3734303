"""Turning a request into a ``User``: the client certificate, else the bearer token, else anonymous."""

from __future__ import annotations

import logging
from typing import Any

from nodeos.api.auth.bootstrap import BootstrapTokens, is_bootstrap_token
from nodeos.api.auth.certs import user_from_certificate
from nodeos.api.auth.rereading import Rereading
from nodeos.api.auth.tokens import TokenFile, TokenFileError
from nodeos.api.auth.user import ANONYMOUS, User
from nodeos.errors import ApiError

log = logging.getLogger(__name__)

# What an anonymous caller may read: probes and load balancers carry no credentials.
ANONYMOUS_PATHS = ("/healthz", "/livez", "/readyz", "/version")
# ... and the one object a joining host reads before it has any credential: the CA and the master's URL,
# which it checks against the CA hash it was given (kubeadm's discovery; nodeos.api.http.join).
CLUSTER_INFO_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
PEER_CERT = "nodeos.peer_cert"  # the TLS listener's connection state: the client certificate, DER, or None


def unauthorized() -> ApiError:
    """kube-apiserver's answer to a missing or wrong credential; kubectl recognises it."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def anonymous_allowed(path: str, method: str = "GET") -> bool:
    path = path.rstrip("/") or "/"
    if path == CLUSTER_INFO_PATH:
        return method == "GET"
    return path in ANONYMOUS_PATHS or path.startswith(tuple(p + "/" for p in ANONYMOUS_PATHS[:3]))


class Authenticator:
    """Authenticates requests of the secure port against the cluster CA (done in the handshake), a token file,
    and bootstrap tokens (``ID.SECRET``, kept as Secrets: nodeos.api.auth.bootstrap) when given."""

    def __init__(self, tokens: TokenFile, bootstrap: BootstrapTokens | None = None) -> None:
        self.tokens = tokens
        self.bootstrap = bootstrap
        self._tokens_file = Rereading(tokens.refresh)

    async def start(self) -> None:
        """Read the token file once: a malformed one stops the start with its one-line error."""
        await self._tokens_file.now()

    async def authenticate(self, scope: dict[str, Any]) -> User:
        """The request's user; ApiError 401 when it has no valid credential and the path needs one."""
        der = scope.get("state", {}).get(PEER_CERT)
        if der:
            user = user_from_certificate(der)
            if user is None:
                raise unauthorized()
            return user
        token = _bearer(scope)
        if token is None:
            if anonymous_allowed(scope.get("path", ""), scope.get("method", "GET")):
                return ANONYMOUS
            raise unauthorized()
        if self.bootstrap is not None and is_bootstrap_token(token):
            bootstrap_user = await self.bootstrap.user(token)
            if bootstrap_user is None:
                raise unauthorized()
            return bootstrap_user
        await self._refresh()
        user = self.tokens.user(token)
        if user is None:
            raise unauthorized()
        return user

    async def _refresh(self) -> None:
        """Notice an edited token file within a second, without a stat per request."""
        try:
            await self._tokens_file.due()
        except TokenFileError as exc:
            log.error("%s; keeping the tokens read before", exc)


def _bearer(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""  # a credential of another kind, or an empty one: wrong, not anonymous
    return None
