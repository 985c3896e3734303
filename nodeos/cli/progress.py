"""A progress display for long waits (``rollout status``; meant for ``join`` and ``up`` too).

On a terminal the status is one line rewritten in place, with a bar when
the wait has a count to show and a spinner otherwise, so a long wait shows
it is alive without scrolling. Anywhere else (a pipe, a log, a test) each
*new* message is printed once on a line of its own, as kubectl does, so
the output stays readable and greppable.
"""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 20
SPINNER = "|/-\\"


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[#######.............] 3/8``: ``done`` of ``total`` (clamped), for a terminal."""
    total = max(total, 0)
    done = min(max(done, 0), total)
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Progress:
    """Shows the latest status of a wait; ``done`` leaves the final message on its own line.

    Use it as a context manager: a wait that ends in an error then leaves
    no half-written line for the error message to run into.
    """

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._last = ""
        self._ticks = 0
        self._width = 0

    def update(self, message: str, done: int | None = None, total: int | None = None) -> None:
        """Show ``message``; with ``done``/``total`` a terminal also gets a bar."""
        if not self.tty:
            if message != self._last:
                print(message, file=self.out, flush=True)
            self._last = message
            return
        self._ticks += 1
        head = bar(done, total) if done is not None and total is not None else SPINNER[self._ticks % len(SPINNER)]
        self._rewrite(f"{head} {message}")
        self._last = message

    def done(self, message: str) -> None:
        """The final message, on a line of its own."""
        if self.tty:
            self._rewrite(message)
            print(file=self.out, flush=True)
            self._width = 0
        else:
            print(message, file=self.out, flush=True)
        self._last = message

    def close(self) -> None:
        """End a line still being rewritten (a wait that failed), so what is printed next starts clean."""
        if self.tty and self._width:
            print(file=self.out, flush=True)
            self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _rewrite(self, line: str) -> None:
        pad = " " * max(self._width - len(line), 0)
        self.out.write(f"\r{line}{pad}")
        self.out.flush()
        self._width = len(line)
