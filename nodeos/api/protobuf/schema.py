"""Every message nodeos decodes, by name, and which kinds a protobuf body may carry."""

from __future__ import annotations

from nodeos.api.kinds import RESOURCES
from nodeos.api.protobuf.core_v1 import CORE_V1
from nodeos.api.protobuf.field import Field
from nodeos.api.protobuf.groups import APPS_V1, AUTHORIZATION_V1, AUTOSCALING_V1, COORDINATION_V1, POLICY_V1
from nodeos.api.protobuf.meta_v1 import META_V1
from nodeos.api.protobuf.pod_spec import POD_SPEC_V1

# Message names are unique across these groups, so one flat namespace serves.
MESSAGES: dict[str, dict[int, Field]] = {
    **META_V1, **CORE_V1, **POD_SPEC_V1, **APPS_V1, **COORDINATION_V1, **AUTOSCALING_V1, **POLICY_V1,
    **AUTHORIZATION_V1,
}

# kind -> the apiVersion its body must name; None accepts any, because clients
# encode DeleteOptions in the group version of whatever they delete.
OBJECTS: dict[str, str | None] = {
    **{resource.kind: resource.api_version for resource in RESOURCES},
    "Scale": "autoscaling/v1",
    "Eviction": "policy/v1",
    "SelfSubjectAccessReview": "authorization.k8s.io/v1",
    "DeleteOptions": None,
}
