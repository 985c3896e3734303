"""Waiting in tests for something a real process will do, with a message worth reading when it does not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(check: Callable[[], Any], timeout: float, what: str, context: Callable[[], str] = lambda: "",
         interval: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy, and return that; after ``timeout`` seconds, fail
    naming ``what`` and showing ``context()`` (the logs of the processes involved, say)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"not within {timeout}s: {what}\n{context()}")
