"""``PodStreams`` on Podman: container logs and exec through libpod.

The container is found by the labels the agent puts on what it creates
(``labels.py``): of the runs of a Kubernetes container (one Podman
container per attempt), the newest attempt is the current one and the one
before it the ``previous`` (the agent keeps that dead container for this).
Should two pods of one name briefly coexist (one deleted, one recreated),
the newer pod's runs count.

Logs come from ``GET /containers/{id}/logs``, multiplexed (libpod does so
even for a TTY), demultiplexed here into one byte stream as ``kubectl logs``
shows it. The response is read at the pace of whoever reads the iterator:
a chatty container with a slow reader costs one connection's buffers, and
never blocks anything else the agent does.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from nodeos.agent.podman import labels
from nodeos.agent.podman.client import LibpodClient, PodmanError, PodmanUnavailable
from nodeos.agent.podman.execsession import PodmanExecSession, exec_output
from nodeos.agent.podman.frames import Demultiplexer, kubelet_timestamp
from nodeos.agent.streams import LogOptions, StreamNotFound

__all__ = ["PodmanStreams"]


class PodmanStreams:
    """Logs and exec of the agent's containers in one Podman service."""

    def __init__(self, client: LibpodClient) -> None:
        self.client = client

    async def logs(self, namespace: str, pod: str, container: str, options: LogOptions) -> _LogStream:
        runs = await self._runs(namespace, pod, container)
        if not runs:
            raise StreamNotFound(f'container "{container}" in pod "{pod}" is not available')
        if options.previous:
            if len(runs) < 2:
                raise StreamNotFound(f'previous terminated container "{container}" in pod "{pod}" not found')
            target = runs[1]
        else:
            target = runs[0]
        request = self.client.http.build_request("GET", f"/containers/{target['Id']}/logs",
                                                 params=_log_params(options), timeout=httpx.Timeout(None, connect=5))
        try:
            response = await self.client.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise PodmanUnavailable(f"podman at {self.client.socket}: {exc}") from exc
        if response.is_error:
            await response.aread()
            await response.aclose()
            if response.status_code == 404:  # removed since we listed it
                raise StreamNotFound(f'container "{container}" in pod "{pod}" is not available')
            raise PodmanError(response.status_code, response.text.strip()[:200])
        return _LogStream(response, timestamps=options.timestamps, limit=options.limit_bytes)

    def exec(self, namespace: str, pod: str, container: str, command: list[str], *, tty: bool,
             stdin: bool) -> PodmanExecSession:
        async def locate() -> str:
            runs = await self._runs(namespace, pod, container)
            if not runs or runs[0].get("State") != "running":
                raise StreamNotFound(f'container not found ("{container}")')
            return runs[0]["Id"]

        return PodmanExecSession(self.client, locate, command, tty=tty, stdin=stdin)

    async def exec_output(self, container_id: str, command: list[str], timeout: float) -> tuple[int, str]:
        """Run ``command`` to its end in a container by id (exec probes, preStop hooks); see ``exec_output``."""
        return await exec_output(self.client, container_id, command, timeout)

    async def _runs(self, namespace: str, pod: str, container: str) -> list[dict[str, Any]]:
        """The container's runs in Podman, newest attempt first."""
        found = await self.client.containers({labels.POD_NAMESPACE: namespace, labels.POD_NAME: pod,
                                              labels.CONTAINER_NAME: container})
        if not found:
            return []
        newest_pod = max(found, key=_created)["Labels"].get(labels.POD_UID)
        runs = [c for c in found if c["Labels"].get(labels.POD_UID) == newest_pod]
        return sorted(runs, key=_attempt, reverse=True)


def _log_params(options: LogOptions) -> dict[str, str]:
    params = {"stdout": "true", "stderr": "true", "follow": _bool(options.follow),
              "timestamps": _bool(options.timestamps)}
    if options.tail_lines is not None:
        params["tail"] = str(options.tail_lines)
    if options.since_time:
        params["since"] = options.since_time
    elif options.since_seconds is not None:
        params["since"] = f"{options.since_seconds}s"  # libpod reads a duration as "that long ago"
    return params


class _LogStream:
    """The log as raw bytes, read from libpod as it is iterated; ``aclose`` releases the connection.

    A plain iterator rather than an async generator, and httpx's own
    generators are stepped to their end on close, so nothing is left
    suspended for the garbage collector to finalize after the trio run.
    """

    def __init__(self, response: httpx.Response, *, timestamps: bool, limit: int | None) -> None:
        self._response = response
        self._raw = response.aiter_raw()
        self._demux = Demultiplexer()
        self._timestamps = timestamps
        self._remaining = limit
        self._closed = False

    def __aiter__(self) -> _LogStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._closed and self._remaining != 0:
            try:
                data = await anext(self._raw)
            except StopAsyncIteration:
                break
            except httpx.TransportError as exc:
                await self.aclose()
                raise PodmanUnavailable(f"reading a log from podman: {exc}") from exc
            chunk = self._decode(data)
            if chunk:
                return chunk
        await self.aclose()
        raise StopAsyncIteration

    def _decode(self, data: bytes) -> bytes:
        payloads = [payload for _, payload in self._demux.feed(data)]
        if self._timestamps:
            payloads = [kubelet_timestamp(payload) for payload in payloads]
        chunk = b"".join(payloads)
        if self._remaining is not None:
            chunk = chunk[:self._remaining]
            self._remaining -= len(chunk)
        return chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(deadline=trio.current_time() + 1.0, shield=True):
            await self._response.aclose()
            with suppress(Exception):
                async for _ in self._raw:
                    pass


def _attempt(container: dict[str, Any]) -> int:
    try:
        return int(container["Labels"].get(labels.ATTEMPT, 0))
    except ValueError:
        return 0


def _created(container: dict[str, Any]) -> datetime:
    """libpod's ``Created`` (RFC 3339; Python 3.11 reads its nine fractional digits, keeping six)."""
    try:
        return datetime.fromisoformat(str(container.get("Created") or ""))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _bool(value: bool) -> str:
    return "true" if value else "false"
