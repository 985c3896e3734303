"""Authentication on the secure port: who is asking, from a client certificate or a bearer token.

Why two credentials: client certificates signed by the cluster CA are what
``nodeos kubeconfig`` and the node's own components use (nothing to store on
the server, revoked by expiry); bearer tokens are what scripts and the join
work hand out and can be removed from the token file at once.

The order is kube-apiserver's: a client certificate wins, then a bearer
token. A request with neither is anonymous: it may read the health
endpoints and ``/version`` only, everything else is 401 with Kubernetes'
``Unauthorized`` Status. A wrong token is 401 too, never a fall back to
anonymous. The user is put on the ASGI scope as ``scope["nodeos.user"]``
for authorization to read.

The insecure port (loopback, plain HTTP) does not authenticate: its
requests carry ``INSECURE_USER``, an administrator, as kube-apiserver's old
insecure port did.
"""

from __future__ import annotations

from nodeos.api.auth.authenticator import ANONYMOUS_PATHS, Authenticator, unauthorized
from nodeos.api.auth.certs import user_from_certificate
from nodeos.api.auth.tokens import TokenFile, TokenFileError, hash_token
from nodeos.api.auth.user import ANONYMOUS, INSECURE_USER, User

__all__ = ["ANONYMOUS", "ANONYMOUS_PATHS", "INSECURE_USER", "Authenticator", "TokenFile", "TokenFileError", "User",
           "hash_token", "unauthorized", "user_from_certificate"]
