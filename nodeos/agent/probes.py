"""Container probes: one attempt (``probe_once``) and the periodic loop that applies thresholds (``Prober``).

How the pod worker uses them, following the kubelet:

- **One ``Prober`` per probe per container run.** A restarted container is a
  new container: it gets fresh probers, so results, counts and the initial
  delay start over.
- **startup gates the others.** While a container has a startup probe that
  has not succeeded, its liveness and readiness probes do not run; it is
  neither ``started`` nor ``ready``. A startup prober's ``run_forever``
  returns once it has decided: after ``on_change(True)`` start the liveness
  and readiness probers; after ``on_change(False)`` kill the container, as
  for a liveness failure. Without a startup probe a running container is
  started.
- **liveness failure restarts.** ``on_change(False)`` means: kill the
  container (Killing event, "Container X failed liveness probe, will be
  restarted") and let restartPolicy and the back-off (``nodeos.agent.backoff``)
  decide the rest. ``run_forever`` then returns: a container being killed is
  not probed again.
- **readiness is the ready flag.** ``result`` is the container's ``ready``
  (False until the first success); the pod's ContainersReady and Ready
  conditions, and so its Endpoints, follow all containers being ready. A
  readiness prober runs for the container's whole life. Without a readiness
  probe a started, running container is ready.
- **every failed attempt** goes to ``on_failure`` with the kind in front
  ("Liveness probe failed: HTTP probe failed with statuscode: 500"), for an
  ``Unhealthy`` Warning event.

Bad input never raises here: a probe spec that cannot be followed (no
handler, an unknown named port, a bad scheme…) is a *failed attempt* with
the reason as its message, which the user sees in Unhealthy events. The API
server validates probes, so this is a second line, for specs from older
objects or bugs, so that one pod's nonsense never stops the agent.

Differences from the kubelet, deliberately small: initialDelaySeconds counts
from when the prober starts (the worker starts it as the container starts),
not from the container's startedAt; the first probe is not jittered; HTTP
redirects are not followed (a 3xx is a success, as the kubelet treats a
redirect to another host).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import trio

__all__ = ["KINDS", "ExecFn", "ProbeResult", "Prober", "container_probes", "probe_once"]

log = logging.getLogger(__name__)

KINDS = {"startup": "startupProbe", "liveness": "livenessProbe", "readiness": "readinessProbe"}
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
BODY_LIMIT = 10 * 1024  # bytes of an HTTP body read at most, as the kubelet
MESSAGE_LIMIT = 1024  # characters of exec output kept in a message
USER_AGENT = "kube-probe/nodeos"  # servers that recognise probes look for the "kube-probe/" prefix


@dataclass(frozen=True)
class ProbeResult:
    """One attempt's outcome; ``message`` says why it failed (or what was odd about a success)."""

    ok: bool
    message: str = ""


#: runs ``command`` in the container, within ``timeout`` seconds; returns (exit code, output).
#: It may raise TimeoutError when the command outlives the timeout; it is cancelled if it overruns.
ExecFn = Callable[[list[str], float], Awaitable[tuple[int, str]]]


class _BadProbe(Exception):
    """A probe spec that cannot be followed; its message becomes the failed attempt's."""


def container_probes(container: dict) -> dict[str, dict]:
    """The container's probes by kind ("startup", "liveness", "readiness"), in that order; absent ones left out."""
    return {kind: probe for kind, field in KINDS.items() if isinstance(probe := container.get(field), dict)}


# -- one attempt

async def probe_once(probe: dict, *, pod_ip: str | None, container: dict, exec_fn: ExecFn) -> ProbeResult:
    """Run the probe once, within its timeoutSeconds. Never raises (but for cancellation)."""
    try:
        if not isinstance(probe, dict):
            raise _BadProbe(f"probe must be an object, not {type(probe).__name__}")
        handler, spec = _handler(probe)
        timeout = _number(probe, "timeoutSeconds", default=1, minimum=1)
        if handler == "exec":
            return await _exec(spec, timeout, exec_fn)
        if handler == "grpc":
            return ProbeResult(False, "grpc probes are not supported")
        host = _host(spec, pod_ip)
        port = _port(spec.get("port"), container)
        if handler == "httpGet":
            return await _http_get(spec, host, port, timeout)
        return await _tcp_socket(host, port, timeout)
    except _BadProbe as exc:
        return ProbeResult(False, f"invalid probe: {exc}")
    except Exception as exc:  # a probe is one container's business: never the agent's end
        log.warning("probe raised", exc_info=True)
        return ProbeResult(False, f"probe error: {exc!r}")


def _handler(probe: dict) -> tuple[str, dict]:
    present = [name for name in HANDLERS if probe.get(name) is not None]
    if not present:
        raise _BadProbe("no handler (exec, httpGet, tcpSocket or grpc)")
    if len(present) > 1:
        raise _BadProbe(f"more than one handler ({', '.join(present)})")
    spec = probe[present[0]]
    if not isinstance(spec, dict):
        raise _BadProbe(f"{present[0]} must be an object")
    return present[0], spec


def _number(probe: Any, name: str, *, default: float, minimum: float) -> float:
    """A numeric field, or its default when absent or out of range (Kubernetes defaults 0 to the default too)."""
    value = probe.get(name) if isinstance(probe, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum or not math.isfinite(value):
        return default
    return value


def _host(spec: dict, pod_ip: str | None) -> str:
    host = spec.get("host") or pod_ip
    if not host:
        raise _BadProbe("the pod has no IP yet and the probe names no host")
    if not isinstance(host, str):
        raise _BadProbe(f"host must be a string, not {host!r}")
    return host


def _port(value: Any, container: dict) -> int:
    """A port number, or a container port's name looked up in ``container.ports``."""
    if isinstance(value, str) and not value.isdigit():
        ports = container.get("ports") if isinstance(container, dict) else None
        for port in ports if isinstance(ports, list) else ():
            if isinstance(port, dict) and port.get("name") == value:
                return _port(port.get("containerPort"), {})
        raise _BadProbe(f"no container port named {value!r}")
    if isinstance(value, str):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _BadProbe(f"port must be 1-65535 or a port name, not {value!r}")
    return value


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _exec(spec: dict, timeout: float, exec_fn: ExecFn) -> ProbeResult:
    command = spec.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(arg, str) for arg in command):
        raise _BadProbe("exec.command must be a non-empty list of strings")
    timed_out = ProbeResult(False, f"command {command!r} timed out")
    with trio.move_on_after(timeout):
        try:
            code, output = await exec_fn(list(command), timeout)
        except TimeoutError:
            return timed_out
        except Exception as exc:
            return ProbeResult(False, f"exec {command!r} failed: {exc}")
        output = output.strip()[:MESSAGE_LIMIT]
        if code == 0:
            return ProbeResult(True, output)
        return ProbeResult(False, output or f"command {command!r} exited with code {code}")
    return timed_out


async def _tcp_socket(host: str, port: int, timeout: float) -> ProbeResult:
    target = f"dial tcp {_host_port(host, port)}"
    with trio.move_on_after(timeout):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            return ProbeResult(False, f"{target}: connect: {_os_reason(exc)}")
        await stream.aclose()
        return ProbeResult(True)
    return ProbeResult(False, f"{target}: i/o timeout")


def _os_reason(exc: OSError) -> str:
    """"connection refused" rather than trio's "all attempts to connect to … failed"."""
    errors = getattr(exc.__cause__, "exceptions", None) or [exc]
    code = getattr(errors[0], "errno", None)
    return os.strerror(code).lower() if code else str(errors[0])


async def _http_get(spec: dict, host: str, port: int, timeout: float) -> ProbeResult:
    scheme = spec.get("scheme") or "HTTP"
    if not isinstance(scheme, str) or scheme.upper() not in ("HTTP", "HTTPS"):
        raise _BadProbe(f"scheme must be HTTP or HTTPS, not {scheme!r}")
    path = spec.get("path") or "/"
    if not isinstance(path, str):
        raise _BadProbe(f"path must be a string, not {path!r}")
    url = f"{scheme.lower()}://{_host_port(host, port)}{path if path.startswith('/') else '/' + path}"
    headers = _headers(spec.get("httpHeaders"))
    with trio.move_on_after(timeout):
        try:
            status = await _get(url, headers)
        except httpx.InvalidURL as exc:
            raise _BadProbe(f'bad URL "{url}": {exc}') from exc
        except httpx.HTTPError as exc:
            return ProbeResult(False, f'Get "{url}": {str(exc) or type(exc).__name__}')
        if 200 <= status < 400:
            return ProbeResult(True)
        return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")
    return ProbeResult(False, f'Get "{url}": timed out after {timeout:g}s')


def _headers(value: Any) -> list[tuple[str, str]]:
    """The probe's httpHeaders after the kubelet's defaults, which they replace by name (Host too)."""
    given: list[tuple[str, str]] = []
    for header in value or ():
        if not isinstance(header, dict) or not isinstance(header.get("name"), str) or not header["name"]:
            raise _BadProbe(f"httpHeaders entries need a name, not {header!r}")
        given.append((header["name"], str(header.get("value") or "")))
    names = {name.lower() for name, _ in given}
    defaults = [("User-Agent", USER_AGENT), ("Accept", "*/*"), ("Connection", "close")]
    return [(name, v) for name, v in defaults if name.lower() not in names] + given


async def _get(url: str, headers: list[tuple[str, str]]) -> int:
    """GET ``url`` and read at most BODY_LIMIT bytes of the body; the status code.

    The body is read, as the kubelet does, so that one that never ends counts
    against the timeout. A client per attempt keeps no connection between
    probes (the kubelet disables keep-alive: a server that stops accepting
    connections must fail its probe) and no pool outlives the trio run; it
    costs well under a millisecond with the shared TLS context.
    """
    async with (httpx.AsyncClient(verify=_insecure_tls(), trust_env=False, timeout=None) as client,
                client.stream("GET", url, headers=headers) as response):
        read = 0
        with trio.CancelScope() as enough:
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= BODY_LIMIT:
                    # Stop at the next read, *inside* httpx's async generators, so that they finish; a `break`
                    # would leave them suspended for trio to warn about when collected (httpx issue 3686).
                    enough.cancel()
        return response.status_code


@functools.cache
def _insecure_tls() -> ssl.SSLContext:
    """TLS without certificate checks, as the kubelet's HTTPS probes: pods serve self-signed certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# -- the periodic loop

class Prober:
    """One probe of one container, run periodically; keeps the thresholds.

    ``result`` is None until decided for startup, False for readiness and
    True for liveness until enough consecutive attempts say otherwise (the
    kubelet's initial values). ``on_change`` is called with the new result
    each time it flips; ``on_failure`` is awaited for each failed attempt.
    """

    def __init__(self, kind: str, probe: dict, *, run: Callable[[], Awaitable[ProbeResult]],
                 on_change: Callable[[bool], None],
                 on_failure: Callable[[ProbeResult], Awaitable[None]] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"probe kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self.initial_delay = _number(probe, "initialDelaySeconds", default=0, minimum=0)
        self.period = _number(probe, "periodSeconds", default=10, minimum=1)
        # liveness and startup decide on one success (the API server insists on 1 for them)
        self.success_threshold = 1 if kind != "readiness" else _number(probe, "successThreshold", default=1, minimum=1)
        self.failure_threshold = _number(probe, "failureThreshold", default=3, minimum=1)
        self.result: bool | None = {"startup": None, "liveness": True, "readiness": False}[kind]
        self.last: ProbeResult | None = None  # the latest attempt
        self._run, self._on_change, self._on_failure = run, on_change, on_failure
        self._streak: tuple[bool | None, int] = (None, 0)  # (outcome, how many in a row)

    async def run_forever(self) -> None:
        """Wait initialDelaySeconds, then probe every periodSeconds until cancelled or there is nothing left to decide.

        Returns after a startup probe decided either way and after a liveness
        failure (the container is to be killed); readiness runs until
        cancelled. An attempt that takes longer than a period skips the
        ticks it missed rather than probing back to back.
        """
        await trio.sleep(self.initial_delay)
        due = trio.current_time()
        while True:
            self._record(await self._attempt())
            if self._finished():
                return
            now = trio.current_time()
            due += self.period * max(1, math.ceil((now - due) / self.period))
            await trio.sleep_until(due)

    async def _attempt(self) -> ProbeResult:
        try:
            outcome = await self._run()
        except Exception as exc:  # a broken ``run`` is a failed attempt, not a dead worker
            log.warning("%s probe raised", self.kind, exc_info=True)
            outcome = ProbeResult(False, f"probe error: {exc!r}")
        self.last = outcome
        if not outcome.ok and self._on_failure is not None:
            await self._on_failure(ProbeResult(False, f"{self.kind.capitalize()} probe failed: {outcome.message}"))
        return outcome

    def _record(self, outcome: ProbeResult) -> None:
        last, count = self._streak
        self._streak = (outcome.ok, count + 1 if outcome.ok == last else 1)
        threshold = self.success_threshold if outcome.ok else self.failure_threshold
        if self._streak[1] >= threshold and self.result is not outcome.ok:
            self.result = outcome.ok
            self._on_change(outcome.ok)

    def _finished(self) -> bool:
        if self.kind == "startup":
            return self.result is not None
        return self.kind == "liveness" and self.result is False
