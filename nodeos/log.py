"""Logging to stderr in the form the reader of stderr wants.

- Under systemd (``JOURNAL_STREAM`` names our stderr): ``<6>nodeos.daemon: message``.
  journald turns the ``<N>`` syslog prefix into the entry's priority and adds
  its own timestamp, so ``journalctl -p warning`` works and nothing is doubled.
- On a terminal or in a file: ``2025-01-31 12:00:00,123 INFO nodeos.daemon: message``.
- ``json``: one object per line (time, level, logger, message, exception) for
  log shippers, whatever stderr is.

Every line of a multi-line record (a traceback) carries the prefix, so
journald files the whole traceback at the record's priority.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["FORMATS", "LEVELS", "setup_logging"]

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")

# Syslog priorities, as journald reads them from a "<N>" line prefix.
_SYSLOG_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                    logging.CRITICAL: 2}

# Libraries that log every request at INFO; their detail is for debugging only.
_CHATTY = ("httpx", "httpcore")


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message`` on every line, for journald."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _stderr_is_journal(stream: TextIO) -> bool:
    """Whether ``stream`` is the journal socket systemd gave us.

    systemd sets ``JOURNAL_STREAM=device:inode`` of that socket; children whose
    stderr was redirected inherit the variable, so compare it with the stream.
    """
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def make_formatter(fmt: str, stream: TextIO) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if _stderr_is_journal(stream):
        return JournalFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send all logging (nodeos' and its libraries') to ``stream`` (stderr).

    Safe to call again: it replaces the handlers of an earlier call.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {FORMATS}")
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(fmt, stream))
    numeric = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
