"""Object metadata the server owns: uids, timestamps, generated names."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from typing import Any

# Kubernetes' generateName alphabet: no vowels, no look-alikes.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(seconds: int) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(base: str) -> str:
    return base + "".join(random.choices(_NAME_ALPHABET, k=5))


def for_storage(obj: dict[str, Any]) -> bytes:
    """Encode an object for the store: without its resourceVersion, which the
    store assigns and the cache adds back on read."""
    metadata = obj.get("metadata") or {}
    rv = metadata.pop("resourceVersion", None)
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    finally:
        if rv is not None:
            metadata["resourceVersion"] = rv


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: a change here bumps the generation."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}
