"""Kubernetes' remote command protocol: ``exec`` over a WebSocket, as kubectl speaks it.

The client offers subprotocols (kubectl 1.32: ``v5.channel.k8s.io``); the
server picks one. Every message is binary, its first byte a channel:

    0 stdin    client → server
    1 stdout   server → client
    2 stderr   server → client (unused with a TTY, whose output is all stdout)
    3 error    server → client: one metav1.Status JSON as the command ends —
               Success, or Failure with reason NonZeroExitCode and the exit
               code in details.causes[{"reason": "ExitCode", "message": "3"}]
    4 resize   client → server: {"Width": 80, "Height": 24}

v5 adds a CLOSE message, ``[255, channel]``: the client's stdin has ended.
v4 has no way to say so. The server ends the session by closing the
WebSocket normally (1000) after the status: the client reads that as the
end of every stream. A message is never empty (the client takes its first
byte as the channel).

The agent's server speaks this to the API server, which relays the
messages unchanged between kubectl and the agent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["CLOSE", "ERROR", "PROTOCOLS", "RESIZE", "STDERR", "STDIN", "STDOUT", "choose_protocol",
           "exit_status", "failure", "message", "resize_of"]

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
NORMAL_CLOSURE = 1000


def choose_protocol(offered: Iterable[str]) -> str | None:
    """The first of the client's subprotocols (in its order of preference) that we speak."""
    for protocol in offered:
        if protocol.strip() in PROTOCOLS:
            return protocol.strip()
    return None


def message(channel: int, data: bytes) -> bytes:
    return bytes((channel,)) + data


def exit_status(code: int) -> bytes:
    """The error channel's last word on a command that exited with ``code``."""
    if code == 0:
        return message(ERROR, _json({"metadata": {}, "status": "Success"}))
    return message(ERROR, _json({
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }))


def failure(text: str, reason: str = "InternalError", code: int = 500) -> bytes:
    """The error channel's message for a command that could not run (kubectl prints ``error: <text>``)."""
    return message(ERROR, _json({"metadata": {}, "status": "Failure", "message": text, "reason": reason,
                                 "code": code}))


def resize_of(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a resize message's payload; None if it is not one."""
    try:
        size = json.loads(data)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
