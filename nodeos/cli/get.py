"""``nodeos get``: list or fetch objects, printed from the server's Table.

The columns are the server's (``as=Table``), so the CLI needs no knowledge of
kinds; ``-o wide`` adds the priority-1 columns. ``-w`` prints the rows, then
a row per change, from a watch starting at the list's resourceVersion.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import aclosing
from typing import Any

from nodeos.api.kinds import Resource
from nodeos.cli import printers
from nodeos.cli.common import command, global_flags, server_error, targets
from nodeos.client import ApiClient
from nodeos.errors import ApiError

Row = dict[str, Any]  # a Table row: {"cells": [...], "object": {...}}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("get", parents=[global_flags()], help="display one or many objects",
                              description="Display one or many objects, as the server's table.")
    p.add_argument("type", metavar="TYPE[/NAME]", help="pods, deploy, deployments.apps, pod/web...")
    p.add_argument("names", nargs="*", default=[], metavar="NAME")
    p.add_argument("-o", "--output", choices=("wide", "yaml", "json", "name"), help="output format")
    p.add_argument("-l", "--selector", help="label selector, e.g. app=web,tier!=db")
    p.add_argument("--field-selector", help="field selector, e.g. metadata.name=web")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list across all namespaces")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, print changes as they come")
    p.add_argument("--no-headers", action="store_true", help="do not print the header row")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    wanted = targets(args.type, args.names)
    namespace = None if args.all_namespaces else api.conn.namespace
    if args.output in ("yaml", "json", "name"):
        return await _print_objects(args, api, wanted, namespace)
    if args.watch:
        return await _watch(args, api, wanted[0][0], namespace, wanted[0][1])
    return await _print_tables(args, api, wanted, namespace)


async def _print_tables(args: argparse.Namespace, api: ApiClient, wanted: list[tuple[Resource, str | None]],
                        namespace: str | None) -> int:
    failed, printed = False, 0
    by_type: dict[Resource, printers.TablePrinter] = {}
    for res, name in wanted:
        try:
            table = await _table(api, res, namespace, name, args.selector, args.field_selector)
        except ApiError as exc:
            failed = _report_missing(exc, name)
            continue
        if by_type and res not in by_type:
            print()  # kubectl separates the tables of different types
        printer = by_type.setdefault(res, _printer(args, table))
        lines = printer.lines(_rows(args, table, table.get("rows") or []))
        printed += len(lines)
        for line in lines:
            print(line)
    if not printed and not failed:
        print(_nothing_found(wanted[0][0], args, api), file=sys.stderr)
    return 1 if failed else 0


async def _table(api: ApiClient, res: Resource, namespace: str | None, name: str | None,
                 label_selector: str | None, field_selector: str | None) -> dict[str, Any]:
    """A Table of one object, or of the whole collection, following ``continue``."""
    if name:
        return await api.get_table(res, namespace, name=name)
    selectors = {"label_selector": label_selector, "field_selector": field_selector}
    table = await api.get_table(res, namespace, limit=500, **selectors)
    token = (table.get("metadata") or {}).get("continue")
    while token:
        page = await api.get_table(res, namespace, limit=500, continue_=token, **selectors)
        table["rows"] = [*(table.get("rows") or []), *(page.get("rows") or [])]
        token = (page.get("metadata") or {}).get("continue")
    return table


def _report_missing(exc: ApiError, name: str | None) -> bool:
    """A named object that is not there is reported and skipped; anything else stops."""
    if exc.code != 404 or not name:
        raise exc
    print(server_error(exc), file=sys.stderr)
    return True


def _printer(args: argparse.Namespace, table: dict[str, Any]) -> printers.TablePrinter:
    columns = printers.table_columns(table, wide=args.output == "wide")
    headers = printers.table_headers(table, columns, with_namespace=args.all_namespaces)
    return printers.TablePrinter(headers, show_headers=not args.no_headers)


def _rows(args: argparse.Namespace, table: dict[str, Any], rows: list[Row]) -> list[list[str]]:
    columns = printers.table_columns(table, wide=args.output == "wide")
    return printers.table_rows({"rows": rows}, columns, with_namespace=args.all_namespaces)


def _nothing_found(res: Resource, args: argparse.Namespace, api: ApiClient) -> str:
    if res.namespaced and not args.all_namespaces:
        return f"No resources found in {api.conn.namespace} namespace."
    return "No resources found"


async def _print_objects(args: argparse.Namespace, api: ApiClient, wanted: list[tuple[Resource, str | None]],
                         namespace: str | None) -> int:
    found: list[tuple[Resource, dict[str, Any]]] = []
    failed = False
    for res, name in wanted:
        try:
            if name:
                found.append((res, await api.get(res, name, namespace)))
            else:
                listed = await api.list_all(res, namespace, label_selector=args.selector,
                                            field_selector=args.field_selector)
                found.extend((res, obj) for obj in listed["items"])
        except ApiError as exc:
            failed = _report_missing(exc, name)
    if args.output == "name":
        for res, obj in found:
            print(printers.object_name(res, obj))
    elif len(wanted) == 1 and wanted[0][1]:
        if found:
            print(printers.dump(found[0][1], args.output))
    else:
        items = [{"apiVersion": res.api_version, "kind": res.kind, **obj} for res, obj in found]
        print(printers.dump(printers.as_list(items), args.output))
    return 1 if failed else 0


async def _watch(args: argparse.Namespace, api: ApiClient, res: Resource, namespace: str | None,
                 name: str | None) -> int:
    """Print the current rows, then one row per change, until interrupted."""
    field_selector = f"metadata.name={name}" if name else args.field_selector
    table = await _table(api, res, namespace, None, args.selector, field_selector)
    printer = _printer(args, table)
    last: dict[str, Row] = {}  # the last row printed per object, to show it again when deleted

    def show(rows: list[Row]) -> None:
        last.update((_row_key(row), row) for row in rows)
        for line in printer.lines(_rows(args, table, rows)):
            print(line, flush=True)

    show(table.get("rows") or [])
    version = (table.get("metadata") or {}).get("resourceVersion")
    events = api.watch(res, namespace, resource_version=version, label_selector=args.selector,
                       field_selector=field_selector, as_table=True, allow_bookmarks=False)
    async with aclosing(events) as stream:
        async for kind, obj in stream:
            show(await _event_rows(api, res, kind, obj, last))
    return 0


async def _event_rows(api: ApiClient, res: Resource, kind: str, obj: dict[str, Any],
                      last: dict[str, Row]) -> list[Row]:
    """The rows of one watch event; from servers that send plain objects, ask for the row."""
    if obj.get("kind") == "Table":
        return obj.get("rows") or []
    key = _row_key({"object": obj})
    if kind == "DELETED":
        return [last[key]] if key in last else []
    meta = obj.get("metadata") or {}
    try:
        return (await api.get_table(res, meta.get("namespace"), name=meta.get("name"))).get("rows") or []
    except ApiError as exc:
        if exc.code != 404:
            raise
        return []


def _row_key(row: Row) -> str:
    meta = (row.get("object") or {}).get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"
