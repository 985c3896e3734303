"""Reading the terminal: how long a lone Esc waits, and a driver that answers it when that wait is over.

A terminal sends Esc alone for the key, and Esc followed by more bytes for an
arrow or function key (``ESC [ A``). The only way to tell them apart is to wait
for more bytes: Textual waits ``ESCDELAY`` milliseconds (100 by default).

- **How long.** 25 ms here. Esc clears the filter and closes prompts, so
  its wait is felt on every use, and it counts against the dashboard's
  100 ms budget per key: with neovim's 50 ms (its ``ttimeoutlen``) the
  benchmark's Esc took 75-80 ms at p50 and 92-101 ms at p99, the rest being
  the terminal's transport and one repaint of 5,000 rows' table. The risk of
  a short wait is an arrow key's bytes (``ESC [ A``) arriving more than 25 ms
  apart, read as Esc then ``[A`` typed. A terminal writes a key's bytes in
  one ``write()``, and SSH carries them in one channel message that sshd
  writes to the pty in one piece, so a split takes a stall in the middle of
  one write (a serial line, a multiplexer cutting reads); tmux users commonly
  run with ``escape-time`` 5 to 20 ms for the same reason. Whoever has such a
  link sets ``ESCDELAY`` (milliseconds, as for ncurses and Textual): their
  value wins, ``ESCDELAY=50`` gives neovim's wait, ``ESCDELAY=100`` Textual's.
- **Answered when the wait is over.** Textual's Linux driver polls its input
  with a fixed 100 ms ``select`` and looks at the Esc timer only after it:
  a lone Esc was answered 100 to 200 ms after it arrived (the timer, then the
  next poll if the first fell a hair short). ``EscapeDriver`` sleeps in
  ``select`` only until the parser's timer falls due, so Esc lands after
  ``ESCDELAY`` and no later.
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Mapping

from textual import constants
from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

ESCAPE_DELAY_MS = 25  # half neovim's ttimeoutlen (see above); a user's ESCDELAY wins
POLL_SECONDS = 0.1  # Textual's own input poll, kept when no Esc is pending (it bounds how soon exit is seen)


def set_escape_delay(environ: Mapping[str, str] = os.environ) -> float:
    """Use ESCAPE_DELAY_MS unless the user set ``ESCDELAY``; return the delay in seconds now in force.

    Textual reads ``ESCDELAY`` once, at import, into ``textual.constants.ESCAPE_DELAY``, which its parser
    consults on every Esc; so the default is put there rather than into the environment.
    """
    if "ESCDELAY" not in environ:
        constants.ESCAPE_DELAY = ESCAPE_DELAY_MS / 1000  # type: ignore[misc]
    return constants.ESCAPE_DELAY


def poll_timeout(deadline: float | None, now: float) -> float:
    """How long to wait for input: until the Esc timer (``deadline``) falls due, else the usual poll."""
    if deadline is None:
        return POLL_SECONDS
    return min(POLL_SECONDS, max(0.0, deadline - now))


class EscapeDriver(LinuxDriver):
    """Textual's Linux driver with one change: its input loop wakes when a pending Esc falls due."""

    def run_input_thread(self) -> None:
        """Textual's ``LinuxDriver.run_input_thread`` (8.2), with ``poll_timeout`` as the select timeout."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def process(events: list[tuple[selectors.SelectorKey, int]], final: bool = False) -> None:
            for index, (_key, mask) in enumerate(events):
                if mask & selectors.EVENT_READ:
                    data = decode(os.read(self.fileno, 1024 * 4), final=final and index == len(events) - 1)
                    if not data:  # stdin is a pipe at its end
                        break
                    for event in parser.feed(data):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                # The parser's Esc timer is private to it; absent (another Textual), this is Textual's own poll.
                process(selector.select(poll_timeout(getattr(parser, "_timeout_time", None), get_time())))
            selector.unregister(self.fileno)
            process(selector.select(POLL_SECONDS), final=True)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
