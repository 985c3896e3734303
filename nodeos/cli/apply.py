"""``nodeos apply -f``: make objects look like their manifests, creating them if absent.

Like kubectl's client-side apply, the manifest is remembered in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, which lets a
three-way diff tell a field the user removed from the manifest (delete it)
from a field someone else set, or the server defaulted (leave it alone).

The patch is a JSON merge patch (RFC 7386), where lists are replaced whole:
a list is sent when it differs from the last applied one, or when the live
list has drifted from the manifest. Field-by-field strategic merging inside
lists is kubectl's job; replacing is simpler and never leaves removed items.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from typing import Any

from nodeos.cli import manifests
from nodeos.cli.common import (
    CliError,
    command,
    global_flags,
    manifest_type,
    object_namespace,
    server_error,
    type_name,
)
from nodeos.client import ApiClient
from nodeos.errors import ApiError

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_MISSING = object()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("apply", parents=[global_flags()], help="create or update objects from manifests",
                              description="Create objects from manifests, or update them to match.")
    p.add_argument("-f", "--filename", action="append", default=[], metavar="FILE", required=True,
                   help="manifest file, folder, or - for stdin (repeatable)")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    failed = False
    for manifest in manifests.load(args.filename):
        try:
            print(await apply_one(args, api, manifest), flush=True)
        except ApiError as exc:
            print(server_error(exc, f'error when applying "{manifest.source}": '), file=sys.stderr)
            failed = True
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


async def apply_one(args: argparse.Namespace, api: ApiClient, manifest: manifests.Manifest) -> str:
    """Create or patch one object; return kubectl's line (``pod/x created|configured|unchanged``)."""
    res = manifest_type(manifest.obj, manifest.source)
    name = (manifest.obj.get("metadata") or {}).get("name")
    if not name:
        raise CliError(f'error when retrieving current configuration from "{manifest.source}": '
                       "resource name may not be empty")
    namespace = object_namespace(res, manifest.obj, args, api)
    desired = with_last_applied(manifest.obj, namespace)
    label = f"{type_name(res)}/{name}"
    try:
        live = await api.get(res, name, namespace)
    except ApiError as exc:
        if exc.code != 404:
            raise
        await api.create(res, desired, namespace)
        return f"{label} created"
    patch = three_way_patch(last_applied(live), desired, live)
    if not patch:
        return f"{label} unchanged"
    await api.patch(res, name, patch, "merge", namespace)
    return f"{label} configured"


def with_last_applied(obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """The manifest, with its namespace set and itself recorded in the annotation."""
    desired = copy.deepcopy(obj)
    meta = desired.setdefault("metadata", {})
    if namespace:
        meta["namespace"] = namespace
    annotations = meta.setdefault("annotations", {})
    annotations.pop(LAST_APPLIED, None)
    # kubectl's serialization: compact JSON, keys sorted, a final newline.
    annotations[LAST_APPLIED] = json.dumps(desired, sort_keys=True, separators=(",", ":")) + "\n"
    return desired


def last_applied(live: dict[str, Any]) -> dict[str, Any] | None:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def three_way_patch(last: dict[str, Any] | None, desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The merge patch taking ``live`` to ``desired``, deleting what ``last`` had and ``desired`` dropped."""
    last = last or {}
    patch: dict[str, Any] = {key: None for key in last if key not in desired and key in live}
    for key, want in desired.items():
        have, had = live.get(key, _MISSING), last.get(key, _MISSING)
        if isinstance(want, dict) and isinstance(have, dict):
            sub = three_way_patch(had if isinstance(had, dict) else None, want, have)
            if sub:
                patch[key] = sub
        elif (isinstance(want, list) and want != had) or not contains(have, want):
            patch[key] = want
    return patch


def contains(have: Any, want: Any) -> bool:
    """Whether the live value already says everything the manifest says (server defaults aside)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and contains(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, list) and len(have) == len(want)
                and all(contains(h, w) for h, w in zip(have, want, strict=True)))
    return have == want
