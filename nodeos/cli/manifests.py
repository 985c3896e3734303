"""Reading objects from ``-f`` arguments: files, folders, stdin; YAML or JSON.

A folder contributes its ``*.yaml``, ``*.yml`` and ``*.json`` files in name
order (not its sub-folders); ``-`` is stdin; a file may hold several YAML
documents, and a ``kind: List`` contributes its items. Every object keeps the
name of its source, because kubectl's messages mention it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from nodeos.cli.common import CliError

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    source: str  # the file name, or "STDIN"
    obj: dict[str, Any]


def load(paths: list[str], stdin: TextIO | None = None) -> list[Manifest]:
    manifests: list[Manifest] = []
    for path in paths:
        for source, text in _texts(path, stdin or sys.stdin):
            manifests.extend(parse(text, source))
    return manifests


def _texts(path: str, stdin: TextIO) -> list[tuple[str, str]]:
    if path == "-":
        return [("STDIN", stdin.read())]
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in SUFFIXES)
    elif p.exists():
        files = [p]
    else:
        raise CliError(f'the path "{path}" does not exist')
    try:
        return [(str(f), f.read_text()) for f in files]
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f'cannot read "{path}": {exc}') from exc


def parse(text: str, source: str) -> list[Manifest]:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CliError(f'error parsing {source}: {" ".join(str(exc).split())}') from exc
    out: list[Manifest] = []
    for doc in documents:
        if not isinstance(doc, dict):
            raise CliError(f'error validating "{source}": the document is not an object')
        if doc.get("kind") == "List" or (str(doc.get("kind", "")).endswith("List") and "items" in doc):
            out.extend(parse_items(doc.get("items") or [], source))
        else:
            out.append(_checked(doc, source))
    return out


def parse_items(items: list[Any], source: str) -> list[Manifest]:
    if not all(isinstance(item, dict) for item in items):
        raise CliError(f'error validating "{source}": a List item is not an object')
    return [_checked(item, source) for item in items]


def _checked(obj: dict[str, Any], source: str) -> Manifest:
    missing = [key for key in ("apiVersion", "kind") if not obj.get(key)]
    if missing:
        raise CliError(f'error validating "{source}": ' + ", ".join(f"{k} not set" for k in missing))
    meta = obj.get("metadata") or {}
    if not (meta.get("name") or meta.get("generateName")):
        raise CliError(f'error validating "{source}": resource name may not be empty')
    return Manifest(source, obj)
