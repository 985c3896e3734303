"""``nodeos events [-n NS] [-A] [-w]``: what happened, oldest first, as ``kubectl events`` prints it.

Events are sorted by when they were last seen (the list order is by name,
which says nothing about time). ``-w`` prints the current events, then
each new or repeated one as the watch delivers it.
"""

from __future__ import annotations

import argparse
from contextlib import aclosing
from typing import Any

from nodeos.api.kinds import by_plural
from nodeos.cli import printers
from nodeos.cli.common import command, global_flags, resource_type
from nodeos.client import ApiClient

EVENTS = by_plural("", "v1", "events")
HEADERS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("events", parents=[global_flags()], help="list events",
                              description="List events, oldest first; -w follows new ones.")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="events of every namespace")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, print new events as they come")
    p.add_argument("--for", dest="for_object", metavar="KIND/NAME", help="only events about this object")
    p.add_argument("--types", help="only these types, comma separated (Normal,Warning)")
    p.add_argument("--no-headers", action="store_true", help="do not print the header row")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    namespace = None if args.all_namespaces else api.conn.namespace
    selector = field_selector(args.for_object)
    listed = await api.list_all(EVENTS, namespace, field_selector=selector)
    headers = ["NAMESPACE", *HEADERS] if args.all_namespaces else HEADERS
    printer = printers.TablePrinter(headers, show_headers=not args.no_headers)
    wanted = [e for e in sorted(listed["items"], key=last_seen) if keep(e, args.types)]
    if not wanted and not args.watch:
        print("No events found" + ("." if args.all_namespaces else f" in {api.conn.namespace} namespace."))
        return 0
    for line in printer.lines(row(e, args.all_namespaces) for e in wanted):
        print(line, flush=True)
    if args.watch:
        version = listed["metadata"].get("resourceVersion")
        events = api.watch(EVENTS, namespace, resource_version=version, field_selector=selector,
                           allow_bookmarks=False)
        async with aclosing(events) as stream:
            async for kind, event in stream:
                if kind != "DELETED" and keep(event, args.types):
                    for line in printer.lines([row(event, args.all_namespaces)]):
                        print(line, flush=True)
    return 0


def field_selector(for_object: str | None) -> str | None:
    """``--for pod/web`` as the events' field selector on the object they are about."""
    if not for_object:
        return None
    kind, _, name = for_object.partition("/")
    return f"involvedObject.kind={resource_type(kind).kind},involvedObject.name={name}"


def last_seen(event: dict[str, Any]) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") \
        or event["metadata"].get("creationTimestamp") or ""


def keep(event: dict[str, Any], types: str | None) -> bool:
    return not types or event.get("type", "") in {t.strip() for t in types.split(",")}


def row(event: dict[str, Any], with_namespace: bool) -> list[str]:
    obj = event.get("involvedObject") or {}
    cells = [printers.human_age(last_seen(event) or None), event.get("type", ""), event.get("reason", ""),
             f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}", (event.get("message") or "").strip()]
    return [event["metadata"].get("namespace", ""), *cells] if with_namespace else cells
