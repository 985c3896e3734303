"""Probes: one attempt against real servers on 127.0.0.1, and the Prober's thresholds and timing on a mock clock."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodeos.agent.probes import Prober, ProbeResult, container_probes, probe_once

# -- a small HTTP server with one behaviour per path

@dataclass
class HttpServer:
    port: int
    requests: list[dict[str, str]] = field(default_factory=list)  # path and headers (lower-case names)


async def _respond(stream: trio.abc.Stream, server: HttpServer) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        data += chunk
    line, *lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    target = line.split(" ")[1]
    path = target.split("?")[0]
    headers = {name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in lines)}
    server.requests.append({"target": target, **headers})

    async def send(status: int, body: bytes = b"", *, length: int | None = None, extra: str = "") -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body) if length is None else length}\r\n{extra}\r\n"
        await stream.send_all(head.encode() + body)

    if path == "/ok":
        await send(200, b"fine")
    elif path == "/fail":
        await send(500, b"broken")
    elif path == "/missing":
        await send(404)
    elif path == "/redirect":  # elsewhere, on loopback: never followed
        await send(302, extra="Location: http://127.0.0.2:1/\r\n")
    elif path == "/slow":
        await trio.sleep(10)
        await send(200)
    elif path == "/stalled-body":  # headers, then a body that never comes
        await send(200, b"x" * 10, length=100_000)
        await trio.sleep_forever()
    elif path == "/endless-body":  # more than the 10 KiB the prober reads, then nothing
        await send(200, b"x" * 20_000, length=10_000_000)
        await trio.sleep_forever()
    elif path == "/headers":
        await send(200 if headers.get("x-probe") == "yes" else 400)
    else:
        await send(404)


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, lambda s: _respond(s, server), 0)
        server = HttpServer(listeners[0].socket.getsockname()[1])
        yield server
        nursery.cancel_scope.cancel()


@pytest.fixture
async def https_server(tmp_path) -> AsyncIterator[HttpServer]:
    """The same server over TLS, with a self-signed certificate no one could verify."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=probe.invalid"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(lambda task_status: trio.serve_ssl_over_tcp(
            lambda s: _respond(s, server), 0, context, https_compatible=True, task_status=task_status))
        server = HttpServer(listeners[0].transport_listener.socket.getsockname()[1])
        yield server
        nursery.cancel_scope.cancel()


async def no_exec(command: list[str], timeout: float) -> tuple[int, str]:
    raise AssertionError("exec_fn called for a non-exec probe")


async def probe(spec: dict, *, pod_ip: str | None = "127.0.0.1", container: dict | None = None,
                exec_fn=no_exec) -> ProbeResult:
    return await probe_once(spec, pod_ip=pod_ip, container=container or {}, exec_fn=exec_fn)


def http_get(port: int | str, path: str = "/ok", **extra) -> dict:
    return {"httpGet": {"port": port, "path": path, **extra}, "timeoutSeconds": 1}


# -- httpGet

@pytest.mark.parametrize(("path", "ok", "message"), [
    ("/ok", True, ""),
    ("/redirect", True, ""),
    ("/fail", False, "HTTP probe failed with statuscode: 500"),
    ("/missing", False, "HTTP probe failed with statuscode: 404"),
    ("/endless-body", True, ""),
])
async def test_http_status_decides(http_server, path, ok, message):
    assert await probe(http_get(http_server.port, path)) == ProbeResult(ok, message)


@pytest.mark.parametrize("path", ["/slow", "/stalled-body"])
async def test_http_timeout_is_a_failure(http_server, path):
    start = trio.current_time()
    result = await probe(http_get(http_server.port, path))
    assert not result.ok
    assert result.message == f'Get "http://127.0.0.1:{http_server.port}{path}": timed out after 1s'
    assert 0.9 < trio.current_time() - start < 2


async def test_http_request_carries_path_query_and_headers(http_server):
    spec = http_get(http_server.port, "headers?x=1", httpHeaders=[{"name": "X-Probe", "value": "yes"},
                                                                    {"name": "Host", "value": "app.example"}])
    assert await probe(spec) == ProbeResult(True)
    request = http_server.requests[-1]
    assert request["target"] == "/headers?x=1"
    assert request["host"] == "app.example"
    assert request["user-agent"].startswith("kube-probe/")
    assert await probe(http_get(http_server.port, "/headers")) == ProbeResult(False, "HTTP probe failed with "
                                                                              "statuscode: 400")


async def test_http_host_defaults_to_the_pod_ip_and_can_be_given(http_server):
    assert (await probe(http_get(http_server.port), pod_ip=None)).message == (
        "invalid probe: the pod has no IP yet and the probe names no host")
    assert (await probe(http_get(http_server.port, host="127.0.0.1"), pod_ip=None)).ok


async def test_http_named_port(http_server):
    container = {"ports": [{"name": "metrics", "containerPort": 1},
                           {"name": "http", "containerPort": http_server.port}]}
    assert (await probe(http_get("http"), container=container)).ok
    result = await probe(http_get("admin"), container=container)
    assert result == ProbeResult(False, "invalid probe: no container port named 'admin'")


async def test_http_refused():
    port = closed_port()
    result = await probe(http_get(port))
    assert not result.ok
    assert result.message.startswith(f'Get "http://127.0.0.1:{port}/ok": ')


async def test_https_does_not_verify_certificates(https_server):
    assert await probe(http_get(https_server.port, scheme="HTTPS")) == ProbeResult(True)
    assert (await probe(http_get(https_server.port, "/fail", scheme="HTTPS"))).message.endswith("statuscode: 500")
    assert https_server.requests[0]["target"] == "/ok"


# -- tcpSocket

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_tcp_listener_and_closed_port():
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, lambda stream: stream.aclose(), 0)
        port = listeners[0].socket.getsockname()[1]
        assert await probe({"tcpSocket": {"port": port}}) == ProbeResult(True)
        named = {"ports": [{"name": "db", "containerPort": port}]}
        assert (await probe({"tcpSocket": {"port": "db"}}, container=named)).ok
        nursery.cancel_scope.cancel()
    port = closed_port()
    assert await probe({"tcpSocket": {"port": port}}) == ProbeResult(False, f"dial tcp 127.0.0.1:{port}: connect: "
                                                                            "connection refused")


# -- exec (the runtime's exec is a callback; here a scripted one)

def exec_returning(code: int, output: str = "", *, delay: float = 0, calls: list | None = None):
    async def exec_fn(command: list[str], timeout: float) -> tuple[int, str]:
        if calls is not None:
            calls.append((command, timeout))
        await trio.sleep(delay)
        return code, output
    return exec_fn


async def test_exec_exit_code_decides(autojump_clock):
    calls: list = []
    spec = {"exec": {"command": ["cat", "/tmp/healthy"]}, "timeoutSeconds": 3}
    assert await probe(spec, exec_fn=exec_returning(0, "ok\n", calls=calls)) == ProbeResult(True, "ok")
    assert calls == [(["cat", "/tmp/healthy"], 3)]
    failed = await probe(spec, exec_fn=exec_returning(1, "cat: can't open '/tmp/healthy'\n"))
    assert failed == ProbeResult(False, "cat: can't open '/tmp/healthy'")
    silent = await probe(spec, exec_fn=exec_returning(2))
    assert silent == ProbeResult(False, "command ['cat', '/tmp/healthy'] exited with code 2")


async def test_exec_timeout_is_a_failure(autojump_clock):
    spec = {"exec": {"command": ["sleep", "60"]}}  # timeoutSeconds defaults to 1
    start = trio.current_time()
    result = await probe(spec, exec_fn=exec_returning(0, delay=60))
    assert result == ProbeResult(False, "command ['sleep', '60'] timed out")
    assert trio.current_time() - start == pytest.approx(1)

    async def raises_timeout(command, timeout):
        raise TimeoutError
    assert await probe(spec, exec_fn=raises_timeout) == result


async def test_exec_errors_are_failures():
    async def broken(command, timeout):
        raise RuntimeError("container is not running")
    result = await probe({"exec": {"command": ["true"]}}, exec_fn=broken)
    assert result == ProbeResult(False, "exec ['true'] failed: container is not running")


# -- bad specs: failures with a reason, never exceptions

@pytest.mark.parametrize(("spec", "message"), [
    (None, "probe must be an object"),
    ([], "probe must be an object"),
    ({}, "no handler"),
    ({"periodSeconds": 5}, "no handler"),
    ({"exec": {"command": ["true"]}, "tcpSocket": {"port": 1}}, "more than one handler (exec, tcpSocket)"),
    ({"httpGet": ["port", 80]}, "httpGet must be an object"),
    ({"httpGet": {}}, "port must be 1-65535"),
    ({"httpGet": {"port": 0}}, "port must be 1-65535"),
    ({"httpGet": {"port": 70000}}, "port must be 1-65535"),
    ({"httpGet": {"port": True}}, "port must be 1-65535"),
    ({"httpGet": {"port": 1.5}}, "port must be 1-65535"),
    ({"httpGet": {"port": "nope"}}, "no container port named 'nope'"),
    ({"httpGet": {"port": 80, "scheme": "FTP"}}, "scheme must be HTTP or HTTPS"),
    ({"httpGet": {"port": 80, "path": 5}}, "path must be a string"),
    ({"httpGet": {"port": 80, "host": 5}}, "host must be a string"),
    ({"httpGet": {"port": 80, "httpHeaders": [{"value": "x"}]}}, "httpHeaders entries need a name"),
    ({"httpGet": {"port": 80, "httpHeaders": "X-A: b"}}, "httpHeaders entries need a name"),
    ({"httpGet": {"port": 80, "host": "[::1"}}, "bad URL"),
    ({"tcpSocket": {"port": -1}}, "port must be 1-65535"),
    ({"exec": {"command": "true"}}, "exec.command must be a non-empty list of strings"),
    ({"exec": {"command": []}}, "exec.command must be a non-empty list of strings"),
    ({"exec": {"command": ["sh", 1]}}, "exec.command must be a non-empty list of strings"),
    ({"exec": {}}, "exec.command must be a non-empty list of strings"),
])
async def test_bad_specs_fail_with_a_reason(spec, message):
    result = await probe(spec, container={"ports": "not a list"})
    assert not result.ok
    assert message in result.message


async def test_grpc_is_not_supported():
    assert await probe({"grpc": {"port": 9090}}) == ProbeResult(False, "grpc probes are not supported")


ODD = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from([70000, 1.5, "", "x", "http", "/", "0"]),
                st.just([]), st.just({}), st.just([{"name": 1}]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["exec", "httpGet", "tcpSocket", "grpc", "timeoutSeconds"]),
                       st.one_of(ODD, st.dictionaries(
                           st.sampled_from(["port", "path", "scheme", "httpHeaders", "command"]), ODD))))
async def test_no_spec_makes_probe_once_raise(spec):
    # every port that can come out of this is closed on loopback: port 1, or "http" -> a closed port
    container = {"ports": [{"name": "http", "containerPort": 1}, {"name": "x"}]}
    result = await probe(spec, container=container, exec_fn=exec_returning(0))
    assert isinstance(result, ProbeResult)


def test_container_probes():
    container = {"name": "app", "livenessProbe": {"tcpSocket": {"port": 1}}, "startupProbe": {"exec": {}},
                 "readinessProbe": None}
    assert list(container_probes(container).items()) == [("startup", {"exec": {}}),
                                                          ("liveness", {"tcpSocket": {"port": 1}})]
    assert container_probes({"name": "app"}) == {}


# -- the Prober, on a mock clock

@dataclass
class Script:
    """A scripted ``run``: the outcomes in order (True/False, or an exception to raise), then success."""

    outcomes: list
    attempts: list[float] = field(default_factory=list)  # when each attempt started, from the test's start
    duration: float = 0
    start: float = field(default_factory=trio.current_time)

    async def __call__(self) -> ProbeResult:
        self.attempts.append(trio.current_time() - self.start)
        await trio.sleep(self.duration)
        outcome = self.outcomes.pop(0) if self.outcomes else True
        if isinstance(outcome, Exception):
            raise outcome
        return ProbeResult(outcome, "" if outcome else f"attempt {len(self.attempts)}")


@dataclass
class Observed:
    script: Script
    changes: list[tuple[float, bool]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def on_change(self, result: bool) -> None:
        self.changes.append((trio.current_time() - self.script.start, result))

    async def on_failure(self, result: ProbeResult) -> None:
        assert not result.ok
        self.failures.append(result.message)


def prober(kind: str, spec: dict, outcomes: list, duration: float = 0) -> tuple[Prober, Observed]:
    script = Script(outcomes, duration=duration)
    observed = Observed(script)
    return Prober(kind, spec, run=script, on_change=observed.on_change, on_failure=observed.on_failure), observed


async def run_for(p: Prober, seconds: float) -> bool:
    """Run the prober for ``seconds``; whether it returned by itself."""
    with trio.move_on_after(seconds):
        await p.run_forever()
        return True
    return False


async def test_readiness_defaults_period_10s_and_thresholds_1_and_3(autojump_clock):
    p, seen = prober("readiness", {}, [False, True, True, False, False, False, True])
    assert p.result is False
    assert not await run_for(p, 75)
    assert seen.script.attempts == [0, 10, 20, 30, 40, 50, 60, 70]
    assert seen.changes == [(10, True), (50, False), (60, True)]
    assert seen.failures == [f"Readiness probe failed: attempt {n}" for n in (1, 4, 5, 6)]
    assert p.result is True
    assert p.last == ProbeResult(True)


async def test_initial_delay_and_period(autojump_clock):
    p, seen = prober("readiness", {"initialDelaySeconds": 5, "periodSeconds": 2}, [])
    await run_for(p, 12)
    assert seen.script.attempts == [5, 7, 9, 11]
    assert seen.changes == [(5, True)]


async def test_success_threshold_needs_consecutive_successes(autojump_clock):
    p, seen = prober("readiness", {"periodSeconds": 1, "successThreshold": 3, "failureThreshold": 2},
                     [True, True, False, True, True, True, False, True, False, False])
    await run_for(p, 11.5)
    assert seen.changes == [(5, True), (9, False)]


async def test_liveness_restarts_after_failure_threshold_and_stops(autojump_clock):
    p, seen = prober("liveness", {"periodSeconds": 5, "failureThreshold": 3, "successThreshold": 4},
                     [False, False, True, False, False, False, False])
    assert p.result is True
    assert await run_for(p, 100)  # returned: the container is to be restarted
    assert seen.script.attempts == [0, 5, 10, 15, 20, 25]
    assert seen.changes == [(25, False)]  # the success in between reset the count
    assert seen.failures == [f"Liveness probe failed: attempt {n}" for n in (1, 2, 4, 5, 6)]
    assert p.result is False


async def test_startup_decides_once_and_returns(autojump_clock):
    # successThreshold is 1 for startup probes, whatever the spec says
    p, seen = prober("startup", {"periodSeconds": 1, "failureThreshold": 30, "successThreshold": 3}, [False] * 12)
    assert p.result is None
    assert await run_for(p, 100)
    assert seen.changes == [(12, True)]
    assert p.result is True

    p, seen = prober("startup", {"periodSeconds": 2, "failureThreshold": 3}, [False] * 5)
    assert await run_for(p, 100)
    assert seen.changes == [(4, False)]
    assert len(seen.failures) == 3


async def test_a_run_that_raises_is_a_failed_attempt(autojump_clock):
    p, seen = prober("liveness", {"failureThreshold": 2}, [RuntimeError("boom"), ValueError("bad")])
    assert await run_for(p, 100)
    assert seen.changes == [(10, False)]
    assert seen.failures == ["Liveness probe failed: probe error: RuntimeError('boom')",
                             "Liveness probe failed: probe error: ValueError('bad')"]


async def test_slow_attempts_skip_missed_ticks(autojump_clock):
    p, seen = prober("readiness", {"periodSeconds": 10}, [], duration=25)
    await run_for(p, 100)
    assert seen.script.attempts == [0, 30, 60, 90]


async def test_bad_timing_fields_fall_back_to_defaults(autojump_clock):
    p, _ = prober("readiness", {"periodSeconds": "5", "initialDelaySeconds": -3, "failureThreshold": 0,
                                   "successThreshold": True}, [])
    assert (p.period, p.initial_delay, p.failure_threshold, p.success_threshold) == (10, 0, 3, 1)
    p, _ = prober("readiness", None, [])
    assert (p.period, p.initial_delay, p.failure_threshold, p.success_threshold) == (10, 0, 3, 1)


async def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="probe kind"):
        Prober("livenessProbe", {}, run=Script([]), on_change=lambda ok: None)


async def test_prober_with_probe_once_on_a_real_server(http_server):
    changes: list[bool] = []
    spec = {"httpGet": {"port": http_server.port, "path": "/fail"}, "periodSeconds": 1, "failureThreshold": 2}
    p = Prober("liveness", spec, on_change=changes.append,
               run=lambda: probe_once(spec, pod_ip="127.0.0.1", container={}, exec_fn=no_exec))
    with trio.fail_after(5):
        await p.run_forever()
    assert changes == [False]
    assert p.last == ProbeResult(False, "HTTP probe failed with statuscode: 500")
