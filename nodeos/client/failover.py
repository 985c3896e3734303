"""Which API server a client talks to when it knows several: k3s' agent load balancer, client side.

A worker is given every master's URL (``[api] servers``). Its client sticks to
one server while that one answers — requests stay in order on one server and
its pooled connections stay warm — and moves to the next in the list when it
fails: a transport error (refused, reset, timed out) or an answer that means
"not here, not now" (503, or 429 without a Retry-After to wait for).

Whether the failed request is then sent to the next server depends on what
the first one could have done with it:

- reads (GET: get, list, watch) are always safe to send again;
- writes only when no connection was made (refused, connect timeout), so the
  server provably never saw them. A write whose connection broke after it was
  sent may have been applied; sending it again could apply it twice (a second
  object from ``generateName``, a JSON patch appended twice). That error goes
  to the caller, whose level-triggered loop reads the state again and decides
  anew — through the next server, since the switch has been made.

Several tasks share one client, and when a server dies they all fail at once:
a switch only happens if the failed server is still the current one, so the
client moves once (and logs once) however many requests saw the failure.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

__all__ = ["CONNECT_TIMEOUT", "KEEPALIVE", "SAFE_METHODS", "WATCH_SILENCE", "Server", "ServerList", "resendable",
           "switches_on_answer"]

log = logging.getLogger(__name__)

# Methods without side effects: a request with one of them may go to any server, any number of times.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# With somewhere else to go, a server that takes longer than this to accept a connection is as good as down.
CONNECT_TIMEOUT = 5.0
# A master whose host vanished sends no RST: TCP keepalive breaks its connections (a watch included)
# after ~25 s instead of the kernel's two hours, so the client can move on.
KEEPALIVE = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10),
    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5),
    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
]
# A nodeos master writes a BOOKMARK on a watch idle for 10 s: a watch with bookmarks silent this long
# is on a master that hangs (a stopped process answers keepalives), and another should take it over.
WATCH_SILENCE = 60.0


@dataclass(frozen=True)
class Server:
    """One API server: its URL, its ``host:port`` (as messages name it) and its connection pool."""

    url: str
    host: str
    http: httpx.AsyncClient


class ServerList:
    """The servers of one client, in order of preference, and the one in use."""

    def __init__(self, servers: Sequence[Server]) -> None:
        if not servers:
            raise ValueError("an API client needs at least one server")
        self.servers = tuple(servers)
        self._current = 0

    def __len__(self) -> int:
        return len(self.servers)

    @property
    def current(self) -> tuple[int, Server]:
        """The server in use, with its index to pass to ``failed`` if it fails."""
        return self._current, self.servers[self._current]

    def failed(self, index: int, reason: str) -> None:
        """Server ``index`` failed a request: move to the next, unless another request already did."""
        if len(self.servers) == 1 or index != self._current:
            return
        self._current = (index + 1) % len(self.servers)
        log.warning("API server %s failed (%s); switching to %s", self.servers[index].url, reason,
                    self.servers[self._current].url)

    async def aclose(self) -> None:
        for server in self.servers:
            await server.http.aclose()


def switches_on_answer(code: int, retry_after: int | None) -> bool:
    """Whether an error answer means this server cannot serve us now, while another might.

    A 429 with Retry-After is the server pacing a client it can serve: wait, as
    asked, rather than shift the load onto the others.
    """
    return code == 503 or (code == 429 and retry_after is None)


def resendable(method: str, *, unsent: bool) -> bool:
    """Whether a request that failed on one server may be sent to the next (see the module's notes)."""
    return method.upper() in SAFE_METHODS or unsent
