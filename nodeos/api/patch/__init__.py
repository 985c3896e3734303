"""The three PATCH formats of the Kubernetes API, on plain JSON objects.

- ``application/json-patch+json``: RFC 6902 operations (``rollout undo``);
- ``application/merge-patch+json``: RFC 7386 (``scale``, ``patch --type merge``);
- ``application/strategic-merge-patch+json``: Kubernetes' own merge, where some
  lists merge by a key instead of being replaced (``kubectl apply``, the default
  of ``kubectl patch``).

Inputs are never mutated and are treated as untrusted: every failure is an
``ApiError`` (400 for a malformed patch, 422 when a well-formed JSON patch
does not apply), never a bare exception.

Strategic merge follows apimachinery's ``strategicpatch`` as the API server
runs it (parallel lists merged, unmatched nulls ignored). The merge keys are
those of the Go struct tags compiled into kubectl 1.32, because kubectl
computes its apply patches from them: where kubectl believes a list is
replaced (``tolerations``, ``taints``, ``envFrom``…) it sends the whole list,
and the server must replace it too, or removed items would come back.
"""

from nodeos.api.patch.json_patch import MAX_JSON_PATCH_OPERATIONS, apply_json_patch
from nodeos.api.patch.merge_patch import apply_merge_patch
from nodeos.api.patch.strategic import apply_strategic_merge_patch

__all__ = ["MAX_JSON_PATCH_OPERATIONS", "apply_json_patch", "apply_merge_patch", "apply_strategic_merge_patch"]
