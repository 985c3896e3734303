"""SelfSubjectAccessReview: "may I?", answered by the authorizer, so ``kubectl auth can-i`` works.

Served at ``POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews``
outside the kinds table: it is never stored, listed or watched, only
created and answered (Kubernetes serves it the same way). Any
authenticated user may ask about themselves. The plain port has no
authorizer: its caller is an administrator, and every answer is yes.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.auth import User
from nodeos.api.authz.attributes import Attributes
from nodeos.api.authz.authorizer import Authorizer
from nodeos.errors import ApiError, Cause

GROUP, VERSION = "authorization.k8s.io", "v1"
KIND, PLURAL = "SelfSubjectAccessReview", "selfsubjectaccessreviews"
REVIEW_PATH = f"/apis/{GROUP}/{VERSION}/{PLURAL}"


async def review(authorizer: Authorizer | None, user: User, body: Any) -> dict[str, Any]:
    """The review of ``body`` for ``user``, with its status filled in; ApiError 422 for a bad spec."""
    spec = body.get("spec") if isinstance(body, dict) else None
    attrs = _attributes(user, spec if isinstance(spec, dict) else {})
    allowed, reason = (True, "") if authorizer is None else await authorizer.decide(attrs)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {"kind": KIND, "apiVersion": f"{GROUP}/{VERSION}", "metadata": {"creationTimestamp": None},
            "spec": spec, "status": status}


def _attributes(user: User, spec: dict[str, Any]) -> Attributes:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None) or not isinstance(resource or non_resource, dict):
        raise _invalid("spec.resourceAttributes",
                       "exactly one of nonResourceAttributes or resourceAttributes must be specified")
    if non_resource is not None:
        return Attributes(user, _text(non_resource, "verb"), _text(non_resource, "path"))
    return Attributes(user, _text(resource, "verb"), "", True, _text(resource, "group"), _text(resource, "version"),
                      _text(resource, "resource"), _text(resource, "subresource"), _text(resource, "namespace"),
                      _text(resource, "name"))


def _text(attributes: dict[str, Any], key: str) -> str:
    value = attributes.get(key, "")
    if not isinstance(value, str):
        raise _invalid(f"spec.{key}", "must be a string")
    return value


def _invalid(field: str, message: str) -> ApiError:
    return ApiError.invalid(KIND, "", [Cause(field, message)], GROUP)
