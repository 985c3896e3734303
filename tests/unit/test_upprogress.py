"""``nodeos up``'s terminal view of the daemon's notify messages."""

from __future__ import annotations

import io
import re

from nodeos.cli.progress import Progress
from nodeos.cli.upprogress import TerminalNotifier
from nodeos.systemd import Notifier


def _notifier(tty: bool) -> tuple[TerminalNotifier, io.StringIO]:
    out = io.StringIO()
    return TerminalNotifier(Notifier(), Progress(out, tty=tty)), out


def test_a_start_is_one_rewritten_line_then_ready_then_a_line_per_change():
    notifier, out = _notifier(tty=True)
    notifier.status("starting: api")
    notifier.status("serving: api; starting: scheduler")
    notifier.ready("serving: api, scheduler")
    notifier.status("serving: api, scheduler")  # the same again: nothing new
    notifier.status("serving: api; restarting: scheduler")
    notifier.stopping("stopping (within 30s)")
    lines = out.getvalue().split("\n")
    assert "\r" in lines[0] and "starting (" in lines[0] and lines[0].count("\r") == 3  # one line, rewritten
    assert re.search(r"\rready in \d+\.\d s: serving: api, scheduler\s*$", lines[0])
    assert re.fullmatch(r"\r\d\d:\d\d:\d\d serving: api; restarting: scheduler", lines[1])
    assert re.fullmatch(r"\r\d\d:\d\d:\d\d stopping \(within 30s\)", lines[2])
    assert lines[3:] == [""]


def test_off_a_terminal_each_new_message_is_a_line():
    notifier, out = _notifier(tty=False)
    notifier.status("starting: api")
    notifier.status("starting: api")
    notifier.ready("serving: api")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("starting (") and lines[1].startswith("ready in ")


def test_it_still_notifies_systemd(tmp_path):
    import socket

    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = TerminalNotifier(Notifier(str(path)), Progress(io.StringIO(), tty=False))
        notifier.ready("serving: api")
        assert sock.recv(1024) == b"READY=1\nSTATUS=serving: api"
