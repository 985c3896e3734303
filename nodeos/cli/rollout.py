"""``nodeos rollout status|restart|undo|history deploy/NAME``: follow and steer a Deployment's rollouts.

``status`` watches the Deployment and reports kubectl's messages (the same
test kubectl's DeploymentStatusViewer applies to the status the controller
writes) through the progress display, until the rollout is complete, has
exceeded its progress deadline (exit 1) or ``--timeout`` passes.
``restart`` and ``undo`` are the dashboard's actions (kubectl's writes);
``history`` lists the revisions of the Deployment's ReplicaSets.
"""

from __future__ import annotations

import argparse
from contextlib import aclosing
from typing import Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.cli import printers
from nodeos.cli.common import CliError, command, global_flags, resource_type
from nodeos.cli.progress import Progress
from nodeos.client import ApiClient
from nodeos.tui.data import actions

DEPLOYMENTS = by_plural("apps", "v1", "deployments")
REPLICASETS = by_plural("apps", "v1", "replicasets")
CHANGE_CAUSE = "kubernetes.io/change-cause"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("rollout", help="manage the rollout of a Deployment",
                              description="Follow, restart, undo or list the rollouts of a Deployment.")
    sub = p.add_subparsers(title="subcommands", metavar="SUBCOMMAND", required=True)
    status = _sub(sub, "status", "wait for a rollout to finish, showing its progress", run_status)
    status.add_argument("--timeout", type=float, default=0, metavar="SECONDS",
                        help="give up after this long (default 0: wait for ever)")
    status.add_argument("-w", "--watch", type=_bool, default=True, metavar="BOOL",
                        help="wait for the rollout (default true); false reports once")
    _sub(sub, "restart", "replace every pod by a rollout", run_restart)
    undo = _sub(sub, "undo", "roll back to the previous revision", run_undo)
    undo.add_argument("--to-revision", type=int, default=0, metavar="N", help="the revision (default: previous)")
    history = _sub(sub, "history", "list the revisions", run_history)
    history.add_argument("--revision", type=int, default=0, metavar="N", help="show this revision's pod template")


def _sub(sub: Any, name: str, about: str, verb: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(name, parents=[global_flags()], help=about, description=about.capitalize() + ".")
    p.add_argument("target", metavar="deploy/NAME", help="deploy/web, or deploy web")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.set_defaults(func=command(verb))
    return p


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"invalid boolean {text!r}")
    return text.lower() == "true"


def deployment_name(args: argparse.Namespace) -> str:
    """The NAME of ``deploy/NAME`` or ``deploy NAME``; only Deployments have rollouts here."""
    kind, _, name = args.target.partition("/")
    name = name or args.name
    if resource_type(kind) is not DEPLOYMENTS:
        raise CliError(f"no rollout support for {kind}: only deployments have rollouts in nodeos")
    if not name:
        raise CliError("required resource not specified")
    return name


def status_message(deployment: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's message for a Deployment's rollout, and whether it is complete.

    Raises CliError when the rollout has exceeded its progress deadline.
    """
    name = deployment["metadata"]["name"]
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "Waiting for deployment spec update to be observed...", False
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            raise CliError(f'deployment "{name}" exceeded its progress deadline')
    wanted, updated = spec.get("replicas", 1), status.get("updatedReplicas", 0)
    total, available = status.get("replicas", 0), status.get("availableReplicas", 0)
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < wanted:
        return waiting + f"{updated} out of {wanted} new replicas have been updated...", False
    if total > updated:
        return waiting + f"{total - updated} old replicas are pending termination...", False
    if available < updated:
        return waiting + f"{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


def _counts(deployment: dict[str, Any]) -> tuple[int, int]:
    """(available updated replicas, wanted): what the bar shows."""
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    return min(status.get("updatedReplicas", 0), status.get("availableReplicas", 0)), wanted


async def run_status(args: argparse.Namespace, api: ApiClient) -> int:
    name = deployment_name(args)
    with Progress() as progress, trio.move_on_after(args.timeout or float("inf")) as scope:
        await _follow(api, name, api.conn.namespace, progress, watch=args.watch)
    if scope.cancelled_caught:
        raise CliError("timed out waiting for the condition")
    return 0


async def _follow(api: ApiClient, name: str, namespace: str, progress: Progress, *, watch: bool) -> None:
    """Report the rollout from each new state of the Deployment until it completes."""
    while True:
        listed = await api.list(DEPLOYMENTS, namespace, field_selector=f"metadata.name={name}")
        if not listed.get("items"):
            raise CliError(f'deployments.apps "{name}" not found')
        if _report(progress, listed["items"][0]) or not watch:
            return
        events = api.watch(DEPLOYMENTS, namespace, resource_version=listed["metadata"].get("resourceVersion"),
                           field_selector=f"metadata.name={name}", timeout_seconds=300, allow_bookmarks=False)
        async with aclosing(events) as stream:
            async for kind, obj in stream:
                if kind == "DELETED":
                    raise CliError(f'deployment "{name}" was deleted')
                if _report(progress, obj):
                    return


def _report(progress: Progress, deployment: dict[str, Any]) -> bool:
    message, complete = status_message(deployment)
    if complete:
        progress.done(message)
    else:
        progress.update(message, *_counts(deployment))
    return complete


async def run_restart(args: argparse.Namespace, api: ApiClient) -> int:
    print(await actions.rollout_restart(api.conn.namespace, deployment_name(args))(api))
    return 0


async def run_undo(args: argparse.Namespace, api: ApiClient) -> int:
    print(await actions.rollout_undo(api.conn.namespace, deployment_name(args), args.to_revision)(api))
    return 0


async def run_history(args: argparse.Namespace, api: ApiClient) -> int:
    name = deployment_name(args)
    deployment = await api.get(DEPLOYMENTS, name, api.conn.namespace)
    revisions = await replica_sets_by_revision(api, deployment)
    if args.revision:
        if args.revision not in revisions:
            raise CliError(f"unable to find the specified revision {args.revision}")
        print(f"deployment.apps/{name} with revision #{args.revision}")
        print(printers.dump((revisions[args.revision].get("spec") or {}).get("template") or {}, "yaml"))
        return 0
    print(f"deployment.apps/{name}")
    printer = printers.TablePrinter(["REVISION", "CHANGE-CAUSE"])
    rows = [[str(rev), _annotations(rs).get(CHANGE_CAUSE) or "<none>"] for rev, rs in sorted(revisions.items())]
    for line in printer.lines(rows):
        print(line)
    print()
    return 0


async def replica_sets_by_revision(api: ApiClient, deployment: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The Deployment's own ReplicaSets (controlled by its UID) by their revision annotation."""
    meta = deployment["metadata"]
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    listed = await api.list_all(REPLICASETS, meta.get("namespace"), label_selector=selector)
    out = {}
    for rs in listed.get("items") or []:
        owned = any(ref.get("controller") and ref.get("uid") == meta.get("uid")
                    for ref in rs["metadata"].get("ownerReferences") or ())
        revision = str(_annotations(rs).get(actions.REVISION, ""))
        if owned and revision.isdigit():
            out[int(revision)] = rs
    return out


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}
