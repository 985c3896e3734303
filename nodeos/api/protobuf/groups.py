"""Messages of the API groups besides core: apps/v1 workloads, coordination.k8s.io/v1 Lease,
autoscaling/v1 Scale, policy/v1 Eviction, authorization.k8s.io/v1 SelfSubjectAccessReview."""

from __future__ import annotations

from nodeos.api.protobuf.field import Field, boolean, int_or_string, integer, message, micro_time, string

_OBJECT = {1: message("metadata", "ObjectMeta")}

APPS_V1: dict[str, dict[int, Field]] = {
    "Deployment": {**_OBJECT, 2: message("spec", "DeploymentSpec"), 3: message("status", "DeploymentStatus")},
    "DeploymentSpec": {
        1: integer("replicas", keep_zero=True),
        2: message("selector", "LabelSelector"),
        3: message("template", "PodTemplateSpec"),
        4: message("strategy", "DeploymentStrategy"),
        5: integer("minReadySeconds"),
        6: integer("revisionHistoryLimit", keep_zero=True),
        7: boolean("paused"),
        9: integer("progressDeadlineSeconds", keep_zero=True),
    },
    "DeploymentStrategy": {1: string("type"), 2: message("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {
        1: int_or_string("maxUnavailable", keep_zero=True),
        2: int_or_string("maxSurge", keep_zero=True),
    },
    "DeploymentStatus": {
        1: integer("observedGeneration"),
        2: integer("replicas"),
        3: integer("updatedReplicas"),
        7: integer("readyReplicas"),
        4: integer("availableReplicas"),
        5: integer("unavailableReplicas"),
        8: integer("collisionCount", keep_zero=True),
    },
    "ReplicaSet": {**_OBJECT, 2: message("spec", "ReplicaSetSpec"), 3: message("status", "ReplicaSetStatus")},
    "ReplicaSetSpec": {
        1: integer("replicas", keep_zero=True),
        4: integer("minReadySeconds"),
        2: message("selector", "LabelSelector"),
        3: message("template", "PodTemplateSpec"),
    },
    "ReplicaSetStatus": {
        1: integer("replicas", keep_zero=True),
        2: integer("fullyLabeledReplicas"),
        4: integer("readyReplicas"),
        5: integer("availableReplicas"),
        3: integer("observedGeneration"),
    },
    "DaemonSet": {**_OBJECT, 2: message("spec", "DaemonSetSpec"), 3: message("status", "DaemonSetStatus")},
    "DaemonSetSpec": {
        1: message("selector", "LabelSelector"),
        2: message("template", "PodTemplateSpec"),
        3: message("updateStrategy", "DaemonSetUpdateStrategy"),
        4: integer("minReadySeconds"),
        6: integer("revisionHistoryLimit", keep_zero=True),
    },
    "DaemonSetUpdateStrategy": {1: string("type"), 2: message("rollingUpdate", "RollingUpdateDaemonSet")},
    "RollingUpdateDaemonSet": {
        1: int_or_string("maxUnavailable", keep_zero=True),
        2: int_or_string("maxSurge", keep_zero=True),
    },
    "DaemonSetStatus": {
        1: integer("currentNumberScheduled", keep_zero=True),
        2: integer("numberMisscheduled", keep_zero=True),
        3: integer("desiredNumberScheduled", keep_zero=True),
        4: integer("numberReady", keep_zero=True),
        5: integer("observedGeneration"),
        6: integer("updatedNumberScheduled"),
        7: integer("numberAvailable"),
        8: integer("numberUnavailable"),
        9: integer("collisionCount", keep_zero=True),
    },
}

COORDINATION_V1: dict[str, dict[int, Field]] = {
    "Lease": {**_OBJECT, 2: message("spec", "LeaseSpec")},
    # every LeaseSpec field is a pointer: a zero leaseTransitions is a real count
    "LeaseSpec": {
        1: string("holderIdentity", keep_zero=True),
        2: integer("leaseDurationSeconds", keep_zero=True),
        3: micro_time("acquireTime"),
        4: micro_time("renewTime"),
        5: integer("leaseTransitions", keep_zero=True),
        6: string("strategy"),
        7: string("preferredHolder"),
    },
}

AUTOSCALING_V1: dict[str, dict[int, Field]] = {
    "Scale": {**_OBJECT, 2: message("spec", "ScaleSpec"), 3: message("status", "ScaleStatus")},
    # replicas is not a pointer, but scaling to zero is the point of the request
    "ScaleSpec": {1: integer("replicas", keep_zero=True)},
    "ScaleStatus": {1: integer("replicas", keep_zero=True), 2: string("selector")},
}

POLICY_V1: dict[str, dict[int, Field]] = {
    # kubectl drain's request to evict a pod (pods/NAME/eviction)
    "Eviction": {**_OBJECT, 2: message("deleteOptions", "DeleteOptions")},
}

AUTHORIZATION_V1: dict[str, dict[int, Field]] = {
    # kubectl auth can-i's question (nodeos.api.authz.review); the selectors of 1.31+ are not read
    "SelfSubjectAccessReview": {**_OBJECT, 2: message("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {1: message("resourceAttributes", "ResourceAttributes"),
                                    2: message("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: string("namespace"), 2: string("verb"), 3: string("group"), 4: string("version"),
                           5: string("resource"), 6: string("subresource"), 7: string("name")},
    "NonResourceAttributes": {1: string("path"), 2: string("verb")},
}
