"""meta/v1 messages (apimachinery/pkg/apis/meta/v1/generated.proto) that objects embed."""

from __future__ import annotations

from nodeos.api.protobuf.field import Field, boolean, integer, message, messages, string, string_map, strings, time

META_V1: dict[str, dict[int, Field]] = {
    "ObjectMeta": {
        1: string("name"),
        2: string("generateName"),
        3: string("namespace"),
        4: string("selfLink"),
        5: string("uid"),
        6: string("resourceVersion"),
        7: integer("generation"),
        8: time("creationTimestamp"),
        9: time("deletionTimestamp"),
        10: integer("deletionGracePeriodSeconds", keep_zero=True),
        11: string_map("labels"),
        12: string_map("annotations"),
        13: messages("ownerReferences", "OwnerReference"),
        14: strings("finalizers"),
        # 17 managedFields: server-side apply bookkeeping, which nodeos does not keep
    },
    "OwnerReference": {
        5: string("apiVersion"),
        1: string("kind"),
        3: string("name"),
        4: string("uid"),
        6: boolean("controller", keep_zero=True),
        7: boolean("blockOwnerDeletion", keep_zero=True),
    },
    "LabelSelector": {
        1: string_map("matchLabels"),
        2: messages("matchExpressions", "LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {
        1: string("key"),
        2: string("operator"),
        3: strings("values"),
    },
    "DeleteOptions": {
        1: integer("gracePeriodSeconds", keep_zero=True),
        2: message("preconditions", "Preconditions"),
        3: boolean("orphanDependents", keep_zero=True),
        4: string("propagationPolicy"),
        5: strings("dryRun"),
        6: boolean("ignoreStoreReadErrorWithClusterBreakingPotential", keep_zero=True),
    },
    "Preconditions": {
        1: string("uid", keep_zero=True),
        2: string("resourceVersion", keep_zero=True),
    },
}
