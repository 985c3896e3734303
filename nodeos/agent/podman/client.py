"""An async client for Podman's libpod REST API over its Unix socket.

One method per libpod call the agent makes, returning libpod's JSON as plain
dicts; no Kubernetes knowledge lives here. httpx speaks HTTP over the socket
natively, so every call stays on the trio loop (the ``podman`` Python
bindings are synchronous and would need a thread per call).

Error handling:

- ``PodmanUnavailable``: the socket is missing, the connection is refused,
  breaks or times out. Podman is down or restarting; retry later.
- ``PodmanError(status, message)``: libpod answered with an error. Its body
  ``{"cause", "message", "response"}`` gives the message, which is libpod's
  human one (e.g. ``localhost/nope:1: image not known``). Pod start/stop/kill
  report per-container failures as ``{"Errs": [...]}``, joined into the message.
- "Already so" is success: starting what runs (304), stopping or killing what
  is not running, removing what is gone. Inspecting what is gone returns None.

Podman 4.3 quirk: ``POST /pods/{id}/stop`` answers 304 and does nothing when
the pod is ``Degraded`` (some containers running, some exited: an exited init
container is enough). ``pod_stop`` then stops the running containers one by
one itself.

Long calls: ``container_wait``, ``events`` and ``pull`` read without a
timeout (a wait lasts as long as the container runs, an event stream is
silent while nothing happens, a pull as long as the download); callers bound
them with trio cancel scopes. The pool has no connection limit because each
of those long calls holds a connection for its whole duration.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import trio

from nodeos.errors import NodeosError
from nodeos.httpbody import OneChunkBody

__all__ = ["API_VERSION", "LibpodClient", "PodmanError", "PodmanUnavailable", "podman_error", "retry_while_down"]

API_VERSION = "v4.0.0"  # Podman's MinAPIVersion for libpod; 4.x services all answer it
T = TypeVar("T")
CONNECT_TIMEOUT = 5.0  # a local socket: a connect that takes longer means Podman is stuck
PING_TIMEOUT = 5.0

log = logging.getLogger("nodeos.podman")


class PodmanUnavailable(NodeosError):
    """Podman's API socket does not answer (missing, refused, broken, timed out): retry later."""


class PodmanError(NodeosError):
    """libpod answered a call with an error."""

    def __init__(self, status: int, message: str, cause: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.cause = cause  # libpod's short cause, e.g. "no such container"

    @property
    def not_found(self) -> bool:
        return self.status == 404


class LibpodClient:
    """One connection pool to one Podman service; use as ``async with LibpodClient(socket) as podman``."""

    def __init__(self, socket: str | os.PathLike, *, timeout: float = 60.0) -> None:
        self.socket = os.fspath(socket)
        self.timeout = timeout
        transport = httpx.AsyncHTTPTransport(uds=self.socket,
                                             limits=httpx.Limits(max_connections=None, max_keepalive_connections=20))
        # Public for streaming helpers (logs, exec) written elsewhere.
        self.http = httpx.AsyncClient(transport=transport, base_url=f"http://d/{API_VERSION}/libpod",
                                      timeout=_timeout(timeout))

    async def __aenter__(self) -> LibpodClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- system ---------------------------------------------------------------

    async def ping(self) -> bool:
        """Whether the service answers now; never raises."""
        try:
            response = await self._request("GET", "/_ping", timeout=_timeout(PING_TIMEOUT))
        except (PodmanUnavailable, PodmanError):
            return False
        return response.status_code == 200

    async def version(self) -> dict:
        """libpod's /version: ``{"Version": "4.3.1", "ApiVersion": ..., "Components": [...]}``."""
        return await self._json("GET", "/version")

    async def info(self) -> dict:
        return await self._json("GET", "/info")

    # -- images ---------------------------------------------------------------

    async def image_inspect(self, name: str) -> dict | None:
        return await self._inspect(f"/images/{_q(name)}/json")

    async def images(self) -> list[dict]:
        return await self._json("GET", "/images/json")

    async def pull(self, reference: str) -> str:
        """Pull ``reference`` (policy "always"); return the image id.

        libpod answers 200 before it knows the outcome and reports a failure
        as an ``{"error": ...}`` line in the body, so the body decides.
        """
        image_id = ""
        async with self._stream("POST", "/images/pull", params={"reference": reference, "quiet": "true"}) as lines:
            async for line in lines:
                report = _json_line(line)
                if report.get("error"):
                    raise PodmanError(500, str(report["error"]), "pull failed")
                image_id = report.get("id") or image_id
        if not image_id:
            raise PodmanError(500, f"pulling {reference}: libpod reported no image id")
        return image_id

    # -- pods -----------------------------------------------------------------

    async def pod_create(self, spec: dict) -> str:
        """Create a pod from a PodSpecGenerator; return its id."""
        return (await self._json("POST", "/pods/create", json=spec))["Id"]

    async def pod_start(self, id_or_name: str) -> None:
        """Start the pod's containers; a running pod is no error (304). A container that fails to start is."""
        await self._request("POST", f"/pods/{_q(id_or_name)}/start")

    async def pod_stop(self, id_or_name: str, timeout: int = 10) -> None:
        """SIGTERM the pod's containers, SIGKILL after ``timeout`` seconds."""
        path = f"/pods/{_q(id_or_name)}/stop"
        response = await self._request("POST", path, params={"t": timeout}, timeout=self._timeout_plus(timeout))
        if response.status_code == 304:
            await self._stop_running_containers(id_or_name, timeout)

    async def _stop_running_containers(self, pod: str, timeout: int) -> None:
        """Stop what still runs in a pod libpod would not stop (see the module's docstring)."""
        inspected = await self.pod_inspect(pod)
        running = [c["Id"] for c in (inspected or {}).get("Containers") or [] if c.get("State") == "running"]
        async with trio.open_nursery() as nursery:
            for cid in running:
                nursery.start_soon(self.container_stop, cid, timeout)

    async def pod_kill(self, id_or_name: str, signal: str = "SIGKILL") -> None:
        """Signal every running container of the pod; a pod with none running is no error."""
        try:
            await self._request("POST", f"/pods/{_q(id_or_name)}/kill", params={"signal": signal})
        except PodmanError as exc:
            if not (exc.status == 409 and "no running containers" in exc.message):
                raise

    async def pod_remove(self, id_or_name: str, *, force: bool = True) -> None:
        """Remove the pod (``force``: with its containers, running or not); a missing pod is no error."""
        await self._request("DELETE", f"/pods/{_q(id_or_name)}", params={"force": _bool(force)}, missing_ok=True,
                            timeout=self._timeout_plus(10))

    async def pod_inspect(self, id_or_name: str) -> dict | None:
        return await self._inspect(f"/pods/{_q(id_or_name)}/json")

    async def pods(self, labels: Mapping[str, str] | None = None) -> list[dict]:
        return await self._json("GET", "/pods/json", params=_filters(labels)) or []

    # -- containers -----------------------------------------------------------

    async def container_create(self, spec: dict) -> str:
        """Create a container from a SpecGenerator; return its id."""
        created = await self._json("POST", "/containers/create", json=spec)
        for warning in created.get("Warnings") or []:
            log.warning("creating container %s: %s", spec.get("name", created["Id"][:12]), warning)
        return created["Id"]

    async def container_start(self, id_or_name: str) -> None:
        """Start the container; a running one is no error (304)."""
        await self._request("POST", f"/containers/{_q(id_or_name)}/start")

    async def container_stop(self, id_or_name: str, timeout: int = 10) -> None:
        """SIGTERM (the image's stop signal), SIGKILL after ``timeout`` seconds; a stopped container is no error."""
        await self._request("POST", f"/containers/{_q(id_or_name)}/stop", params={"timeout": timeout},
                            timeout=self._timeout_plus(timeout))

    async def container_kill(self, id_or_name: str, signal: str = "SIGTERM") -> None:
        """Send ``signal``; a container that is not running is no error."""
        try:
            await self._request("POST", f"/containers/{_q(id_or_name)}/kill", params={"signal": signal})
        except PodmanError as exc:
            if exc.cause != "container state improper":
                raise

    async def container_remove(self, id_or_name: str, *, force: bool = True) -> None:
        """Remove the container and its anonymous volumes; a missing container is no error."""
        await self._request("DELETE", f"/containers/{_q(id_or_name)}", params={"force": _bool(force), "v": "true"},
                            missing_ok=True, timeout=self._timeout_plus(10))

    async def container_inspect(self, id_or_name: str) -> dict | None:
        return await self._inspect(f"/containers/{_q(id_or_name)}/json")

    async def containers(self, labels: Mapping[str, str] | None = None, *, all: bool = True) -> list[dict]:
        params = {**_filters(labels), "all": _bool(all)}
        return await self._json("GET", "/containers/json", params=params) or []

    async def container_stats(self) -> list[dict]:
        """One reading of every running container's figures (``CPUNano`` cumulative, ``SystemNano`` when
        read, ``MemUsage``...); all of them, so a container that stops meanwhile fails nothing."""
        answer = await self._json("GET", "/containers/stats", params={"stream": "false"})
        if answer.get("Error"):
            raise PodmanError(500, f"container stats: {answer['Error']}")
        return answer.get("Stats") or []

    async def container_wait(self, id_or_name: str, conditions: Sequence[str] = ("exited",)) -> int:
        """Block until the container reaches one of ``conditions``; return its exit code."""
        response = await self._request("POST", f"/containers/{_q(id_or_name)}/wait",
                                       params={"condition": list(conditions)}, timeout=_timeout(None))
        return int(response.json())

    async def events(self, labels: Mapping[str, str] | None = None) -> AsyncIterator[dict]:
        """Yield libpod events (``{"Type", "Action", "Actor": {"ID", "Attributes"}, "timeNano", ...}``) as they happen.

        The subscription begins with the first iteration: what happened before
        is not reported (libpod's ``since`` would replay it, but Podman 4.3's
        file event logger then sends nothing at all), so read state after
        subscribing. The stream ends (the iterator returns, or raises
        PodmanUnavailable) when Podman goes away; callers reconnect and re-read
        state, since events in between are lost. To stop early, close the
        iterator (``contextlib.aclosing``) so the connection is released at once.
        """
        params = {"stream": "true", **_filters(labels)}
        async with self._stream("GET", "/events", params=params) as lines:
            async for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    log.warning("ignoring an event libpod sent that is not JSON: %r", line[:200])
                    continue
                yield event

    # -- networks -------------------------------------------------------------

    async def network_inspect(self, name: str) -> dict | None:
        return await self._inspect(f"/networks/{_q(name)}/json")

    async def network_create(self, spec: dict) -> dict:
        """Create a network (``{"name", "driver", "network_interface", "subnets": [...]}``); return it."""
        return await self._json("POST", "/networks/create", json=spec)

    async def network_remove(self, name: str) -> None:
        """Remove the network; a missing one is no error, one in use is."""
        await self._request("DELETE", f"/networks/{_q(name)}", missing_ok=True)

    # -- HTTP -----------------------------------------------------------------

    async def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                       missing_ok: bool = False, timeout: httpx.Timeout | None = None) -> httpx.Response:
        """Send one call; raise PodmanError on an error answer (but 404 when ``missing_ok``)."""
        content = None if json is None else _dumps(json)
        headers = None if content is None else {"Content-Type": "application/json"}
        request = self.http.build_request(method, path, params=params, content=content, headers=headers,
                                          timeout=timeout or self.http.timeout)
        request.stream = OneChunkBody(content or b"")
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from exc
        if response.is_error and not (missing_ok and response.status_code == 404):
            raise podman_error(response)
        return response

    def _timeout_plus(self, seconds: float) -> httpx.Timeout:
        """The usual timeout plus the time a call waits on purpose (a stop's grace period)."""
        return _timeout(self.timeout + seconds)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise PodmanError(response.status_code, f"{method} {path}: libpod answered with no JSON") from exc

    async def _inspect(self, path: str) -> dict | None:
        response = await self._request("GET", path, missing_ok=True)
        return None if response.status_code == 404 else response.json()

    def _stream(self, method: str, path: str, *, params: Mapping[str, Any]) -> _Lines:
        """A streamed call: ``async with self._stream(...) as lines: async for line in lines``."""
        return _Lines(self, method, path, params)

    def _unavailable(self, exc: httpx.TransportError) -> PodmanUnavailable:
        detail = str(exc) or str(exc.__cause__ or "") or type(exc).__name__
        return PodmanUnavailable(f"podman at {self.socket}: {detail}")


class _Lines:
    """``async with``: a streamed answer, iterated as its non-empty lines, read without a timeout.

    On exit the response is closed and httpx's line iterator (an async
    generator chain) stepped to its end, so nothing is left suspended for the
    garbage collector to finalize after the trio run (encode/httpx#3686). This
    class iterates by ``__anext__``, adding no generator of its own.
    """

    def __init__(self, client: LibpodClient, method: str, path: str, params: Mapping[str, Any]) -> None:
        self._client, self._method, self._path, self._params = client, method, path, params
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None

    async def __aenter__(self) -> _Lines:
        http = self._client.http
        request = http.build_request(self._method, self._path, params=self._params, timeout=_timeout(None))
        request.stream = OneChunkBody(b"")
        try:
            self._response = await http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._client._unavailable(exc) from exc
        if self._response.is_error:
            try:
                await self._response.aread()
            except httpx.TransportError as exc:
                raise self._client._unavailable(exc) from exc
            finally:
                await self._response.aclose()
            raise podman_error(self._response)
        self._lines = self._response.aiter_lines()
        return self

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        assert self._lines is not None, "iterate inside 'async with'"
        while True:
            try:
                line = await anext(self._lines)
            except httpx.TransportError as exc:
                raise self._client._unavailable(exc) from exc
            if line.strip():
                return line

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._response is None:
            return
        with trio.CancelScope(deadline=trio.current_time() + 1.0, shield=True):
            await self._response.aclose()
            if self._lines is not None:
                with suppress(Exception):
                    async for _ in self._lines:
                        pass


async def retry_while_down(call: Callable[[], Awaitable[T]], retry_seconds: float = 1.0) -> T:
    """``await call()``, waiting out Podman being down (a service restarting) rather than failing.

    For the agent's own calls, which have nothing better to do than wait;
    PodmanError (Podman answered, and said no) goes to the caller.
    """
    while True:
        try:
            return await call()
        except PodmanUnavailable as exc:
            log.info("podman is not answering (%s); retrying", exc)
            await trio.sleep(retry_seconds)


def podman_error(response: httpx.Response) -> PodmanError:
    """A PodmanError from libpod's error body, whichever of its shapes it has."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return PodmanError(response.status_code, str(body["message"]), str(body.get("cause") or ""))
    if isinstance(body, dict) and body.get("Errs"):  # pod start/stop/kill: one error per container
        return PodmanError(response.status_code, "; ".join(map(str, body["Errs"])))
    text = response.text.strip() or response.reason_phrase
    return PodmanError(response.status_code, f"{response.request.method} {response.request.url.path}: {text}")


def _timeout(read: float | None) -> httpx.Timeout:
    """A read timeout (None: none) with the short connect timeout of a local socket."""
    return httpx.Timeout(read, connect=CONNECT_TIMEOUT)


def _json_line(line: str) -> dict:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise PodmanError(500, f"libpod sent a line that is not JSON: {line[:200]!r}") from exc
    return value if isinstance(value, dict) else {}


def _filters(labels: Mapping[str, str] | None) -> dict[str, str]:
    """libpod's ``filters`` query parameter: JSON of filter name to values (labels match all)."""
    if not labels:
        return {}
    return {"filters": _dumps({"label": [f"{k}={v}" for k, v in labels.items()]}).decode()}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _q(name: str) -> str:
    """A name or reference as one path segment (image references contain '/' and ':')."""
    return quote(name, safe="")


def _bool(value: bool) -> str:
    return "true" if value else "false"
