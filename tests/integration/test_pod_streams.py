"""PodmanStreams on real Podman: logs and exec of containers made by hand with the agent's labels."""

from __future__ import annotations

import re
import time
from contextlib import aclosing

import pytest
import trio

from nodeos.agent.podman import labels
from nodeos.agent.podman.client import LibpodClient
from nodeos.agent.podman.streams import PodmanStreams
from nodeos.agent.streams import STDERR, STDOUT, LogOptions, StreamNotFound
from tests.podman import podman

KUBELET_TIME = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"


@pytest.fixture
def ns(podman_ns):
    return podman_ns


@pytest.fixture
async def streams(podman_socket):
    async with LibpodClient(podman_socket) as client:
        yield PodmanStreams(client)


def run(image: str, ns: str, script: str, *, pod: str = "p", container: str = "c", attempt: int = 0,
        uid: str = "uid-1") -> str:
    """A container as the agent would make it (its labels), running ``script``; returns its id."""
    values = {labels.MANAGED: "true", labels.POD_UID: uid, labels.POD_NAMESPACE: ns, labels.POD_NAME: pod,
              labels.CONTAINER_NAME: container, labels.ATTEMPT: str(attempt)}
    args = [arg for key, value in values.items() for arg in ("--label", f"{key}={value}")]
    return podman("run", "-d", *args, image, "sh", "-c", script).stdout.strip()


def wait_exited(container_id: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while podman("inspect", "--format", "{{.State.Status}}", container_id).stdout.strip() != "exited":
        assert time.monotonic() < deadline, f"{container_id} did not exit"
        time.sleep(0.05)


async def read_log(streams: PodmanStreams, ns: str, options: LogOptions | None = None) -> bytes:
    chunks = await streams.logs(ns, "p", "c", options or LogOptions())
    async with aclosing(chunks):
        return b"".join([chunk async for chunk in chunks])


async def wait_log(streams: PodmanStreams, ns: str, expected: bytes, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while await read_log(streams, ns) != expected:
            await trio.sleep(0.05)


async def test_logs_whole_tail_timestamps_and_limit(streams, ns, test_image):
    run(test_image, ns, "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three; sleep 3600")
    await wait_log(streams, ns, b"one\ntwo\nthree\n")
    assert await read_log(streams, ns, LogOptions(tail_lines=1)) == b"three\n"
    assert await read_log(streams, ns, LogOptions(tail_lines=0)) == b""
    assert await read_log(streams, ns, LogOptions(limit_bytes=6)) == b"one\ntw"
    assert await read_log(streams, ns, LogOptions(since_seconds=3600)) == b"one\ntwo\nthree\n"
    stamped = await read_log(streams, ns, LogOptions(timestamps=True, tail_lines=2))
    assert re.fullmatch(KUBELET_TIME + rb" two\n" + KUBELET_TIME + rb" three\n", stamped), stamped


async def test_follow_streams_lines_as_they_are_written(streams, ns, test_image):
    run(test_image, ns, "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done")
    seen: list[bytes] = []
    with trio.fail_after(10):
        chunks = await streams.logs(ns, "p", "c", LogOptions(follow=True))
        async with aclosing(chunks):
            async for chunk in chunks:
                seen.extend(chunk.splitlines())
                if len(seen) >= 5:
                    break
    assert seen[:5] == [f"line {i}".encode() for i in range(1, 6)]


async def test_follow_ends_with_the_container(streams, ns, test_image):
    run(test_image, ns, "echo start; sleep 1; echo end")
    with trio.fail_after(10):
        chunks = await streams.logs(ns, "p", "c", LogOptions(follow=True))
        async with aclosing(chunks):
            assert b"".join([chunk async for chunk in chunks]) == b"start\nend\n"


async def test_previous_is_the_attempt_before_the_newest(streams, ns, test_image):
    wait_exited(run(test_image, ns, "echo first run; exit 1", attempt=0))
    with pytest.raises(StreamNotFound, match='previous terminated container "c" in pod "p" not found'):
        await streams.logs(ns, "p", "c", LogOptions(previous=True))
    run(test_image, ns, "echo second run; sleep 3600", attempt=1)
    await wait_log(streams, ns, b"second run\n")
    assert await read_log(streams, ns, LogOptions(previous=True)) == b"first run\n"


async def test_a_recreated_pod_of_the_same_name_wins(streams, ns, test_image):
    wait_exited(run(test_image, ns, "echo old pod", attempt=3, uid="old"))
    run(test_image, ns, "echo new pod; sleep 3600", attempt=0, uid="new")
    await wait_log(streams, ns, b"new pod\n")


async def test_missing_containers(streams, ns, test_image):
    with pytest.raises(StreamNotFound, match='container "c" in pod "p" is not available'):
        await streams.logs(ns, "p", "c", LogOptions())
    with pytest.raises(StreamNotFound, match=r'container not found \("c"\)'):
        async with streams.exec(ns, "p", "c", ["true"], tty=False, stdin=False):
            pass
    wait_exited(run(test_image, ns, "true"))
    with pytest.raises(StreamNotFound):
        async with streams.exec(ns, "p", "c", ["true"], tty=False, stdin=False):
            pass


async def collect(session) -> dict[int, bytes]:
    out = {STDOUT: b"", STDERR: b""}
    async for stream, data in session.output():
        out[stream] += data
    return out


async def test_exec_stdout_stderr_and_exit_code(streams, ns, test_image):
    run(test_image, ns, "sleep 3600")
    with trio.fail_after(10):
        async with streams.exec(ns, "p", "c", ["sh", "-c", "echo out; echo err >&2; exit 3"], tty=False,
                                stdin=False) as session:
            assert await collect(session) == {STDOUT: b"out\n", STDERR: b"err\n"}
            assert await session.exit_code() == 3


async def test_exec_stdin_to_its_end(streams, ns, test_image):
    run(test_image, ns, "sleep 3600")
    with trio.fail_after(10):
        async with streams.exec(ns, "p", "c", ["cat"], tty=False, stdin=True) as session:
            await session.write_stdin(b"hello\n")
            await session.write_stdin(b"world\n")
            await session.close_stdin()
            assert await collect(session) == {STDOUT: b"hello\nworld\n", STDERR: b""}
            assert await session.exit_code() == 0


async def test_exec_a_command_that_does_not_exist(streams, ns, test_image):
    run(test_image, ns, "sleep 3600")
    with trio.fail_after(10):
        async with streams.exec(ns, "p", "c", ["no-such-command"], tty=False, stdin=False) as session:
            out = await collect(session)
            assert await session.exit_code() == 127
    assert b"no-such-command" in out[STDERR]


async def test_exec_with_a_tty(streams, ns, test_image):
    run(test_image, ns, "sleep 3600")
    output = b""
    with trio.fail_after(10):
        async with streams.exec(ns, "p", "c", ["sh"], tty=True, stdin=True) as session:
            await session.resize(100, 30)
            await session.write_stdin(b"busybox stty size; exit 4\n")
            async for stream, data in session.output():
                assert stream == STDOUT
                output += data
            assert await session.exit_code() == 4
    assert b"30 100\r\n" in output


async def test_exec_output_for_probes(streams, ns, test_image):
    container_id = run(test_image, ns, "sleep 3600")
    assert await streams.exec_output(container_id, ["sh", "-c", "echo ok; echo bad >&2; exit 2"], 5) == (2, "ok\nbad\n")
    started = trio.current_time()
    code, _ = await streams.exec_output(container_id, ["sleep", "10"], 0.5)
    assert code == -1 and trio.current_time() - started < 3
