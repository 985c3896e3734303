"""``nodeos exec POD [-c C] [-i] [-t] -- CMD...``: run a command in a container, over the API's WebSocket.

The API server serves ``pods/exec`` as a WebSocket only (no SPDY), in
Kubernetes' remote command protocol (``nodeos.agent.remotecommand``):
binary messages whose first byte is a channel. We copy stdout and stderr
out as they come, stdin in (then v5's CLOSE at its end), the terminal's
size on ``-t``, and leave with the command's exit code, which the server
sends last on the error channel. A refused handshake carries the API
server's Status (no such pod, a container to choose...), reported as
kubectl does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, WebSocketConnection, open_websocket_url

from nodeos.agent import remotecommand as rc
from nodeos.api.kinds import by_plural
from nodeos.cli.common import CliError, global_flags, open_client
from nodeos.cli.logs import pod_name
from nodeos.client import ApiClient, ApiUnavailable
from nodeos.client.api import resource_path, status_error
from nodeos.errors import ApiError

PODS = by_plural("", "v1", "pods")
MAX_MESSAGE = 16 * 1024 * 1024
CONNECT_TIMEOUT = 10.0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("exec", parents=[global_flags()], help="run a command in a container",
                              description="Run a command in a container: nodeos exec POD [-c C] [-it] -- CMD...")
    p.add_argument("pod", metavar="POD", help="the pod (NAME or pod/NAME)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command and its arguments")
    _add_flags(p)
    p.set_defaults(func=run)


def _add_flags(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("-c", "--container", default=default(None),
                        help="the container (needed when the pod has several)")
    parser.add_argument("-i", "--stdin", action="store_true", default=default(False), help="pass stdin to the command")
    parser.add_argument("-t", "--tty", action="store_true", default=default(False), help="give the command a terminal")


def split_command(args: argparse.Namespace) -> list[str]:
    """The command, with the flags given between POD and ``--`` parsed into ``args``.

    argparse's REMAINDER takes every word after POD, flags too; kubectl
    allows flags there, so the words before ``--`` are parsed again here.
    (argparse drops a ``--`` that comes right after POD.)
    """
    words = list(args.command)
    if "--" in words:
        cut = words.index("--")
        flags = argparse.ArgumentParser(prog="nodeos exec", parents=[global_flags()], add_help=False)
        _add_flags(flags, suppress=True)
        flags.parse_args(words[:cut], namespace=args)
        words = words[cut + 1:]
    elif words[:1] and words[0].startswith("-"):
        raise CliError(f"unknown flag {words[0]}: put the command after --: nodeos exec POD [flags] -- CMD")
    if not words:
        raise CliError("you must specify at least one command for the container")
    return words


def run(args: argparse.Namespace) -> int:
    command = split_command(args)
    use_tty = args.tty and args.stdin and sys.stdin.isatty()
    if args.tty and not use_tty:
        print("Unable to use a TTY - input is not a terminal or the right kind of file", file=sys.stderr)
    with _raw_terminal(use_tty):
        return trio.run(_exec, args, command, use_tty)


def exec_url(api: ApiClient, pod: str, command: list[str], *, container: str | None, stdin: bool,
             tty: bool) -> str:
    """The WebSocket URL of the exec (``ws``/``wss`` as the server is ``http``/``https``)."""
    query = [("command", c) for c in command] + [("stdout", "true"), ("stderr", "false" if tty else "true")]
    query += [("stdin", "true")] * stdin + [("tty", "true")] * tty + [("container", container)] * bool(container)
    path = resource_path(PODS, api.conn.namespace, pod, "exec")
    return "ws" + api.server.removeprefix("http").rstrip("/") + path + "?" + urlencode(query)


def exit_code(status: dict[str, Any]) -> int:
    """The command's exit code from the error channel's Status; a Failure without one raises."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or ():
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                return int(cause["message"])
    raise CliError(status.get("message") or "the command failed")


async def _exec(args: argparse.Namespace, command: list[str], use_tty: bool) -> int:
    async with open_client(args) as api:
        url = exec_url(api, pod_name(args.pod), command, container=args.container, stdin=args.stdin, tty=use_tty)
        ssl = api.conn.ssl_context() if url.startswith("wss://") else None
        headers = [(b"authorization", f"Bearer {api.conn.token}".encode())] if api.conn.token else []
        try:
            async with open_websocket_url(url, ssl, subprotocols=rc.PROTOCOLS, extra_headers=headers,
                                          max_message_size=MAX_MESSAGE, connect_timeout=CONNECT_TIMEOUT) as ws:
                return await _session(ws, stdin=args.stdin, tty=use_tty)
        except ConnectionRejected as refused:
            raise _refusal(refused) from None
        except (HandshakeError, OSError) as exc:
            raise unreachable(api.server, exc) from None


def unreachable(server: str, exc: BaseException) -> ApiUnavailable:
    """The server could not be reached: say why (trio-websocket hides the OS error as the cause)."""
    chain, todo = [], [exc]
    while todo and len(chain) < 16:  # the causes, and the errors grouped in them (one per address tried)
        chain.append(error := todo.pop(0))
        todo += [e for e in (error.__cause__ or error.__context__,) if e is not None]
        todo += list(error.exceptions) if isinstance(error, BaseExceptionGroup) else []
    refused = any(isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower() for e in chain)
    reason = next((str(e) for e in chain if str(e)), type(chain[0]).__name__)
    return ApiUnavailable(urlsplit(server).netloc, reason, refused=refused)


def _refusal(refused: ConnectionRejected) -> ApiError:
    """The API server's Status from a refused handshake."""
    try:
        status = json.loads(refused.body or b"")
    except ValueError:
        status = None
    if isinstance(status, dict):
        return status_error(status, refused.status_code)
    body = (refused.body or b"").decode(errors="replace").strip()
    return ApiError(refused.status_code, "", body or f"the server refused the exec ({refused.status_code})")


async def _session(ws: WebSocketConnection, *, stdin: bool, tty: bool) -> int:
    """Relay until the server sends the exit status (or closes); return the command's exit code."""
    async with trio.open_nursery() as nursery:
        if stdin:
            nursery.start_soon(_send_stdin, ws, ws.subprotocol == rc.V5)
        if tty:
            nursery.start_soon(_send_sizes, ws)
        code = await _receive(ws)
        nursery.cancel_scope.cancel()
    return code


async def _receive(ws: WebSocketConnection) -> int:
    outs = {rc.STDOUT: sys.stdout.buffer, rc.STDERR: sys.stderr.buffer}
    try:
        while True:
            message = await ws.get_message()
            data = message if isinstance(message, bytes) else message.encode()
            if not data:
                continue
            if data[0] == rc.ERROR:
                return exit_code(json.loads(data[1:]))
            if data[0] in outs:
                await trio.to_thread.run_sync(_write, outs[data[0]], data[1:])
    except ConnectionClosed:
        return 0  # closed without a status: what kubectl takes as success too


def _write(out: Any, data: bytes) -> None:
    out.write(data)
    out.flush()


async def _send_stdin(ws: WebSocketConnection, can_close: bool) -> None:
    fd = sys.stdin.fileno()
    while data := await trio.to_thread.run_sync(os.read, fd, 64 * 1024, abandon_on_cancel=True):
        await ws.send_message(rc.message(rc.STDIN, data))
    if can_close:  # v5: tell the command its stdin has ended
        await ws.send_message(bytes((rc.CLOSE, rc.STDIN)))


async def _send_sizes(ws: WebSocketConnection) -> None:
    """The terminal's size now, then again on each SIGWINCH."""
    with trio.open_signal_receiver(signal.SIGWINCH) as changes:
        while True:
            columns, lines = os.get_terminal_size(sys.stdin.fileno())
            await ws.send_message(rc.message(rc.RESIZE, json.dumps({"Width": columns, "Height": lines}).encode()))
            await changes.__anext__()


@contextmanager
def _raw_terminal(raw: bool) -> Iterator[None]:
    """The local terminal in raw mode for ``-it``, so keys go to the remote command; restored after."""
    if not raw:
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
