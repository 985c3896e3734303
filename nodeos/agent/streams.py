"""What a container runtime offers for ``kubectl logs`` and ``kubectl exec``.

The agent's server (``nodeos.agent.server``) speaks HTTP and the WebSocket
channel protocol; a runtime only has to provide the byte streams behind
them. ``PodStreams`` is that boundary, as small as the two verbs need:
Podman implements it (``nodeos.agent.podman.streams``), and a test can
implement it with a few lines.

Containers are named the Kubernetes way (namespace, pod, container); which
run of a container that means (the current one, or the previous one for
``previous=True``) is the runtime's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from nodeos.errors import NodeosError

__all__ = ["ExecSession", "LogOptions", "PodStreams", "StreamNotFound"]

STDOUT, STDERR = 1, 2  # the stream numbers of ExecSession.output, as in the channel protocol


class StreamNotFound(NodeosError):
    """No such pod or container runs here (or no previous run, for ``previous``); the message says which."""


@dataclass(frozen=True)
class LogOptions:
    """Kubernetes' PodLogOptions, as the kubelet receives them."""

    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None  # RFC 3339
    timestamps: bool = False  # prefix each line with its RFC3339Nano time and a space, as the kubelet does
    previous: bool = False  # the run before the current one (the container that last terminated)
    limit_bytes: int | None = None


class ExecSession(Protocol):
    """One command running in a container, with its streams; use as ``async with``.

    Entering starts the command; leaving releases the streams (the command
    itself may outlive a session left early, as it does with the kubelet).
    ``output`` ends when the command's output ends, at its exit; then
    ``exit_code`` says how it ended.
    """

    async def __aenter__(self) -> ExecSession: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """``(STDOUT | STDERR, data)`` as the command writes it; a TTY's output all comes as STDOUT."""
        ...

    async def exit_code(self) -> int: ...


class PodStreams(Protocol):
    async def logs(self, namespace: str, pod: str, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        """A container's log, as raw bytes, stdout and stderr merged (as ``kubectl logs`` shows them).

        Awaiting finds the container, so a missing one raises StreamNotFound
        before any byte is sent; the iterator then streams (to the end of the
        log, or on for ``follow`` while the container runs). Close it
        (``contextlib.aclosing``) when stopping early.
        """
        ...

    def exec(self, namespace: str, pod: str, container: str, command: list[str], *, tty: bool,
             stdin: bool) -> ExecSession:
        """A session running ``command`` in the container; entering it raises StreamNotFound when the
        container does not run here."""
        ...
