"""Authorization on the secure port: roles, bindings, node restriction, and Kubernetes' 403.

Authentication (nodeos.api.auth) says who is asking; this package says
whether they may. ``ApiApp`` asks ``Authorizer.authorize`` right after
authenticating, for HTTP and WebSocket requests alike; a refusal is a 403
Status worded as kube-apiserver words it. The roles are ``admin``, ``edit``,
``view`` (roles.py) and ``node`` (node.py); group ``system:masters`` is
admin, ``system:nodes`` members are their node; the operator binds the
others in a TOML policy file (policy.py), read again when it changes.
``kubectl auth can-i`` asks through a SelfSubjectAccessReview (review.py).
Without TLS there is no authorizer: the plain port's caller is an admin.
"""

from __future__ import annotations

from nodeos.api.authz.attributes import Attributes, request_attributes
from nodeos.api.authz.authorizer import Authorizer, check_policy, policy_path, registry_lookup, registry_pods
from nodeos.api.authz.forbidden import forbidden
from nodeos.api.authz.node import node_decision, node_name
from nodeos.api.authz.policy import Binding, PolicyError, PolicyFile, parse_policy
from nodeos.api.authz.review import REVIEW_PATH, review
from nodeos.api.authz.roles import ROLES, role_allows

__all__ = ["REVIEW_PATH", "ROLES", "Attributes", "Authorizer", "Binding", "PolicyError", "PolicyFile",
           "check_policy", "forbidden", "node_decision", "node_name", "parse_policy", "policy_path",
           "registry_lookup", "registry_pods", "request_attributes", "review", "role_allows"]
