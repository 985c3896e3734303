"""The 403 answer, worded exactly as kube-apiserver words it, so kubectl prints the familiar line.

kube-apiserver (endpoints/handlers/responsewriters ``forbiddenMessage`` and
apimachinery's ``NewForbidden``)::

    pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "default"
    pods "x" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "default"
    nodes "b" is forbidden: User "system:node:a" cannot patch resource "nodes/status" in API group "" at the
    cluster scope: node 'a' cannot modify node 'b'
    forbidden: User "alice" cannot get path "/foo"
"""

from __future__ import annotations

import json

from nodeos.api.authz.attributes import Attributes
from nodeos.errors import ApiError


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The Forbidden Status for ``attrs``; ``reason`` (why an authorizer said no) follows a colon."""
    message = _what_was_refused(attrs)
    if reason:
        message = f"{message}: {reason}"
    if not attrs.resource_request:
        return ApiError(403, "Forbidden", f"forbidden: {message}", {})
    subject = attrs.qualified_resource + (f" {_q(attrs.name)}" if attrs.name else "")
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {message}", {k: v for k, v in details.items() if v})


def _what_was_refused(attrs: Attributes) -> str:
    user = _q(attrs.user.name)
    if not attrs.resource_request:
        return f"User {user} cannot {attrs.verb} path {_q(attrs.path)}"
    what = f"User {user} cannot {attrs.verb} resource {_q(attrs.full_resource)} in API group {_q(attrs.api_group)}"
    if attrs.namespace:
        return f"{what} in the namespace {_q(attrs.namespace)}"
    return f"{what} at the cluster scope"


def _q(text: str) -> str:
    """Go's %q for the plain names these are: quoted, with quotes and control characters escaped."""
    return json.dumps(text, ensure_ascii=False)
