"""LibpodClient against a real Podman service: the libpod API as it answers, not a fake of it.

(A Podman that dies under the client: tests/integration/test_podman_service.py.)
"""

from __future__ import annotations

import random
import uuid
from contextlib import aclosing

import pytest
import trio

from nodeos.agent.podman.client import LibpodClient, PodmanError, PodmanUnavailable
from tests.podman import remove_labelled

TEST_LABEL = "nodeos.test"


@pytest.fixture
def label():
    """A label of this test's own; whatever carries it is removed afterwards."""
    value = uuid.uuid4().hex[:12]
    yield {TEST_LABEL: value}
    remove_labelled(f"{TEST_LABEL}={value}")


@pytest.fixture
async def client(podman_socket):
    async with LibpodClient(podman_socket, timeout=30) as c:
        yield c


async def sleeper_pod(client: LibpodClient, label: dict, image: str, *commands: list[str]) -> tuple[str, list[str]]:
    """A started pod with one container per command; returns the pod id and the container ids."""
    name = f"t-{label[TEST_LABEL]}"
    pod_id = await client.pod_create({"name": name, "labels": label})
    await client.pod_start(pod_id)
    ids = []
    for i, command in enumerate(commands):
        cid = await client.container_create({"name": f"{name}-{i}", "pod": pod_id, "image": image,
                                             "command": command, "labels": label})
        await client.container_start(cid)
        ids.append(cid)
    return pod_id, ids


async def state(client: LibpodClient, cid: str) -> str:
    return (await client.container_inspect(cid))["State"]["Status"]


async def test_system_calls(client, test_image):
    assert await client.ping()
    assert (await client.version())["Version"].startswith("4.")
    assert "host" in await client.info()
    assert (await client.image_inspect(test_image))["Id"]
    assert await client.image_inspect("localhost/nope:1") is None
    assert any(test_image in (image.get("RepoTags") or []) for image in await client.images())


async def test_pod_and_container_lifecycle(client, label, test_image):
    pod_id, [cid] = await sleeper_pod(client, label, test_image, ["sleep", "1000"])
    await client.pod_start(pod_id)  # already running: fine
    await client.container_start(cid)

    assert (await client.pod_inspect(pod_id))["State"] == "Running"
    inspected = await client.container_inspect(cid)
    assert inspected["State"]["Running"] and inspected["Pod"] == pod_id
    assert [p["Id"] for p in await client.pods(label)] == [pod_id]
    assert cid in {c["Id"] for c in await client.containers(label)}
    assert await client.pods({TEST_LABEL: "no-such-value"}) == []

    # sleep is PID 1 and ignores SIGTERM: the stop's timeout ends in SIGKILL
    with trio.fail_after(15):
        await client.container_stop(cid, timeout=1)
    assert await state(client, cid) == "exited"
    await client.container_stop(cid, timeout=1)  # already stopped: fine
    await client.container_kill(cid)  # not running: fine

    await client.container_start(cid)
    await client.container_kill(cid, "SIGKILL")
    with trio.fail_after(15):
        assert await client.container_wait(cid) == 137

    await client.pod_kill(pod_id)
    assert (await client.pod_inspect(pod_id))["State"] == "Exited"
    await client.pod_kill(pod_id)  # nothing running: fine

    await client.container_remove(cid)
    assert await client.container_inspect(cid) is None
    await client.container_remove(cid)  # gone: fine
    await client.pod_remove(pod_id)
    assert await client.pod_inspect(pod_id) is None
    await client.pod_remove(pod_id)


async def test_pod_stop_stops_a_degraded_pod(client, label, test_image):
    """Podman 4.3 answers 304 to stopping a pod whose containers did not all run; the client stops them anyway."""
    pod_id, [sleeper, quitter] = await sleeper_pod(client, label, test_image, ["sleep", "1000"], ["true"])
    with trio.fail_after(15):
        assert await client.container_wait(quitter) == 0
    assert (await client.pod_inspect(pod_id))["State"] == "Degraded"
    with trio.fail_after(15):
        await client.pod_stop(pod_id, timeout=1)
    assert await state(client, sleeper) == "exited"
    await client.pod_stop(pod_id, timeout=1)  # stopped: fine


async def test_wait_returns_the_exit_code(client, label, test_image):
    _, [cid, sleeper] = await sleeper_pod(client, label, test_image, ["sh", "-c", "exit 3"], ["sleep", "1000"])
    with trio.fail_after(15):
        assert await client.container_wait(cid) == 3
        assert await client.container_wait(cid, ("exited", "stopped")) == 3  # exited already: at once

    # a wait outlasts the client's timeout, and a cancelled one leaves the client fine
    async with LibpodClient(client.socket, timeout=0.5) as impatient:
        with trio.move_on_after(1.5) as waited:
            await impatient.container_wait(sleeper)
        assert waited.cancelled_caught
        assert await impatient.container_inspect(sleeper)


async def test_errors_carry_libpods_message(client, label, test_image):
    pod_id, _ = await sleeper_pod(client, label, test_image)
    with pytest.raises(PodmanError) as info:
        await client.pod_create({"name": f"t-{label[TEST_LABEL]}"})
    assert info.value.status == 409 and "already exists" in info.value.message

    with pytest.raises(PodmanError) as info:
        await client.container_create({"name": f"t-{label[TEST_LABEL]}-x", "pod": pod_id,
                                       "image": "localhost/nope:1", "labels": label})
    assert "localhost/nope:1: image not known" in str(info.value)

    cid = await client.container_create({"name": f"t-{label[TEST_LABEL]}-y", "pod": pod_id, "image": test_image,
                                         "command": ["/no/such/command"], "labels": label})
    with pytest.raises(PodmanError) as info:
        await client.container_start(cid)
    assert "/no/such/command" in info.value.message

    with pytest.raises(PodmanError) as info:
        await client.container_kill("no-such-container-h1")
    assert info.value.not_found


async def test_pull_of_a_missing_image_fails_fast(client):
    with trio.fail_after(30), pytest.raises(PodmanError) as info:
        await client.pull("localhost/nope:1")
    assert "localhost/nope:1" in info.value.message
    with trio.fail_after(10), pytest.raises(PodmanError) as info:
        await client.pull("Not A Reference")
    assert "invalid reference format" in info.value.message


async def test_events_report_a_container_that_died(client, label, test_image):
    died = []

    async def follow(task_status=trio.TASK_STATUS_IGNORED):
        async with aclosing(client.events(label)) as events:
            task_status.started()
            async for event in events:
                if event["Type"] == "container" and event["Action"] == "died":
                    died.append(event)
                    return

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(follow)
            # the stream is open once iteration starts: the container lives a second to be sure it is seen
            _, [cid] = await sleeper_pod(client, label, test_image, ["sh", "-c", "sleep 1; exit 3"])
    assert died[0]["Actor"]["ID"] == cid
    assert died[0]["Actor"]["Attributes"]["containerExitCode"] == "3"


async def test_events_stream_survives_silence(client, label):
    """Nothing happens for longer than the client's timeout: the stream stays open (no read timeout)."""
    async with LibpodClient(client.socket, timeout=0.5) as impatient:
        with trio.move_on_after(1.5) as waited:
            async with aclosing(impatient.events(label)) as events:
                async for event in events:
                    pytest.fail(f"unexpected event {event}")
    assert waited.cancelled_caught


async def test_network_create_inspect_remove(client):
    name = f"nodeos-test-{uuid.uuid4().hex[:8]}"
    bridge = f"nt{name[-8:]}"
    for _ in range(10):  # other tests may hold some 10.244.x subnets
        third = random.randint(128, 254)
        spec = {"name": name, "driver": "bridge", "network_interface": bridge,
                "subnets": [{"subnet": f"10.244.{third}.0/24", "gateway": f"10.244.{third}.1"}]}
        try:
            created = await client.network_create(spec)
            break
        except PodmanError as exc:
            if "already used" not in exc.message:
                raise
    else:
        pytest.fail("no free 10.244.x subnet")
    try:
        assert created["name"] == name and created["network_interface"] == bridge
        inspected = await client.network_inspect(name)
        assert inspected["subnets"][0]["subnet"] == f"10.244.{third}.0/24"
        with pytest.raises(PodmanError) as info:
            await client.network_create(spec)
        assert info.value.status == 409
    finally:
        await client.network_remove(name)
    assert await client.network_inspect(name) is None
    await client.network_remove(name)  # gone: fine


async def test_unavailable_when_nothing_listens(tmp_path):
    async with LibpodClient(tmp_path / "none.sock") as absent:
        assert not await absent.ping()
        with pytest.raises(PodmanUnavailable, match=r"none\.sock"):
            await absent.info()
        with pytest.raises(PodmanUnavailable):
            async with aclosing(absent.events()) as events:
                async for _ in events:
                    pass
        with pytest.raises(PodmanUnavailable):
            await absent.pull("localhost/nope:1")
