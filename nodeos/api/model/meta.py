"""ObjectMeta validation, the same for every kind.

Only the name rule differs between kinds (``NAME_RULES``); everything else —
namespace, labels, annotations, owner references, finalizers — is checked
here once, so a new kind gets it for free.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.model._fields import (
    INT64,
    Causes,
    child,
    forbidden,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    immutable,
    index,
    invalid,
    iter_dicts,
    required,
    wrong_type,
)
from nodeos.api.model.validation import (
    NameRule,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    mask_trailing_dash,
    validate_annotations,
    validate_labels,
)

# Kubernetes keeps Service names DNS-1035 labels: they become DNS names and
# environment variable prefixes, which may not start with a digit.
NAME_RULES: dict[str, NameRule] = {
    "Namespace": is_dns1123_label,
    "Service": is_dns1035_label,
}


def name_rule(kind: str) -> NameRule:
    return NAME_RULES.get(kind, is_dns1123_subdomain)


def validate_object_meta(obj: dict[str, Any], kind: str, namespaced: bool) -> Causes:
    errs: Causes = []
    meta = get_dict(obj, "metadata", "", errs)
    rule = name_rule(kind)
    name = get_str(meta, "name", "metadata", errs)
    generate_name = get_str(meta, "generateName", "metadata", errs)
    if generate_name:
        errs += [invalid("metadata.generateName", generate_name, m)
                 for m in rule(mask_trailing_dash(generate_name))]
    if name:
        errs += [invalid("metadata.name", name, m) for m in rule(name)]
    elif not generate_name:
        errs.append(required("metadata.name", "name or generateName is required"))

    namespace = get_str(meta, "namespace", "metadata", errs)
    if namespaced and not namespace:
        errs.append(required("metadata.namespace"))
    elif namespaced:
        errs += [invalid("metadata.namespace", namespace, m) for m in is_dns1123_label(namespace)]
    elif namespace:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))

    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    errs += validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    errs += validate_finalizers(meta.get("finalizers"), "metadata.finalizers")
    for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "selfLink"):
        get_str(meta, field, "metadata", errs)
    generation = get_int(meta, "generation", "metadata", errs, INT64)
    if generation is not None and generation < 0:
        errs.append(invalid("metadata.generation", generation, "must be greater than or equal to 0"))
    get_int(meta, "deletionGracePeriodSeconds", "metadata", errs, INT64)
    get_list(meta, "managedFields", "metadata", errs)
    return errs


def validate_owner_references(refs: Any, path: str) -> Causes:
    errs: Causes = []
    controller = None
    for ref_path, ref in iter_dicts(refs, path, errs):
        api_version = get_str(ref, "apiVersion", ref_path, errs)
        kind = get_str(ref, "kind", ref_path, errs)
        name = get_str(ref, "name", ref_path, errs)
        uid = get_str(ref, "uid", ref_path, errs)
        if not _version_of(api_version):
            errs.append(invalid(child(ref_path, "apiVersion"), api_version, "version must not be empty"))
        if not kind:
            errs.append(invalid(child(ref_path, "kind"), kind, "kind must not be empty"))
        if not name:
            errs.append(invalid(child(ref_path, "name"), name, "name must not be empty"))
        if not uid:
            errs.append(invalid(child(ref_path, "uid"), uid, "uid must not be empty"))
        get_bool(ref, "blockOwnerDeletion", ref_path, errs)
        if get_bool(ref, "controller", ref_path, errs):
            if controller is not None:
                errs.append(invalid(path, refs, "Only one reference can have Controller set to true. "
                                    f'Found "true" in references for {controller} and {name}'))
            else:
                controller = name
    return errs


def _version_of(api_version: str) -> str:
    parts = api_version.split("/")
    if len(parts) == 1:
        return parts[0]
    return parts[1] if len(parts) == 2 else ""


def validate_finalizers(finalizers: Any, path: str) -> Causes:
    if finalizers is None:
        return []
    if not isinstance(finalizers, list):
        return [wrong_type(path, finalizers, "a list")]
    errs: Causes = []
    for i, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            errs.append(wrong_type(index(path, i), finalizer, "a string"))
        else:
            errs += [invalid(path, finalizer, m) for m in is_qualified_name(finalizer)]
    return errs


def validate_object_meta_update(obj: dict[str, Any], old: dict[str, Any]) -> Causes:
    """Identity fields never change; uid and creationTimestamp only when the
    client sent them (the server fills them in from the stored object)."""
    errs: Causes = []
    meta = get_dict(obj, "metadata", "", errs)
    old_meta = old.get("metadata") if isinstance(old.get("metadata"), dict) else {}
    for field in ("name", "namespace", "uid", "creationTimestamp"):
        new, before = meta.get(field), old_meta.get(field)
        if field in ("uid", "creationTimestamp") and not new:
            continue
        if (new or "") != (before or ""):
            errs.append(immutable(child("metadata", field), new))
    return errs
