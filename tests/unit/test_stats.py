"""The agent's usage figures: rates from counters, the sampler, /proc, Podman's and the simulator's figures,
and the Summary API as the agent's server answers it."""

from __future__ import annotations

import json
import os

import pytest
import trio

from nodeos.agent.podman.stats import container_counters
from nodeos.agent.server import AgentApp
from nodeos.agent.simstats import IDLE_CPU, IDLE_MEMORY, NODE_BASE_CPU, SimulatedCollector, simulated_usage
from nodeos.agent.stats import ContainerCounters, CpuRates, Sample, StatsSampler, cpu_rate, read_node_counters

SECOND = 1_000_000_000


@pytest.mark.parametrize(("previous", "current", "rate"), [
    (None, (5 * SECOND, 10 * SECOND), None),                     # one reading is no rate
    ((0, 0), (SECOND, 2 * SECOND), 500_000_000),                 # 1 s of CPU in 2 s: half a core
    ((0, 0), (4 * SECOND, 2 * SECOND), 2_000_000_000),           # two cores
    ((SECOND, SECOND), (SECOND, SECOND), None),                  # no time between them
    ((5 * SECOND, 0), (SECOND, SECOND), None),                   # the counter went back: a new run
])
def test_cpu_rate(previous, current, rate):
    assert cpu_rate(previous, current) == rate


def test_rates_remember_each_counter_and_forget_the_gone():
    rates = CpuRates()
    assert rates.rate("a", 0, 0) is None
    assert rates.rate("b", 0, 0) is None
    assert rates.rate("a", SECOND // 10, SECOND) == 100_000_000
    rates.keep_only(["b"])
    assert rates.rate("a", SECOND, 2 * SECOND) is None  # forgotten: starts over
    assert rates.rate("b", SECOND, SECOND) == SECOND


def test_node_counters_from_proc(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("cpu  100 20 30 1000 50 5 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    (tmp_path / "proc/meminfo").write_text("MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    600 kB\n")
    busy, used = read_node_counters(tmp_path)
    assert busy == 160 * SECOND // os.sysconf("SC_CLK_TCK")  # all but idle (1000) and iowait (50)
    assert used == 400 * 1024


def test_node_counters_of_this_host():
    busy, used = read_node_counters()
    assert busy > 0 and used > 0


def _counters(name: str, cpu_ns: int, *, pod: str = "web", key: str | None = None) -> ContainerCounters:
    return ContainerCounters("default", pod, f"uid-{pod}", name, key or f"{pod}/{name}", cpu_ns, 1 << 20)


class FakeCollector:
    def __init__(self) -> None:
        self.cpu = 0
        self.calls = 0
        self.fail = False

    async def collect(self) -> Sample:
        self.calls += 1
        if self.fail:
            raise OSError("podman went away")
        self.cpu += SECOND // 4  # between samples, whatever the period: the rate depends on the time
        return Sample(node_cpu_ns=self.cpu * 4, node_memory_bytes=1 << 30,
                      containers=(_counters("b", self.cpu), _counters("a", self.cpu)))


async def test_sampler_gives_rates_from_the_second_sample_on(autojump_clock):
    collector = FakeCollector()
    sampler = StatsSampler("n1", collector.collect)
    assert sampler.summary()["pods"] == [] and "usageNanoCores" not in sampler.summary()["node"]["cpu"]
    async with trio.open_nursery() as nursery:
        await nursery.start(sampler.run)
        await trio.sleep(0.5)
        first = sampler.summary()
        assert "usageNanoCores" not in first["pods"][0]["cpu"] and first["pods"][0]["memory"]["workingSetBytes"]
        await trio.sleep(1)  # incomplete figures: the next sample comes after QUICK_PERIOD
        assert collector.calls == 2
        second = sampler.summary()
        assert second["node"] == {"nodeName": "n1", "cpu": {"time": second["node"]["cpu"]["time"],
                                                          "usageNanoCores": 1_000_000_000},
                                  "memory": {"time": second["node"]["memory"]["time"], "workingSetBytes": 1 << 30}}
        pod = second["pods"][0]
        assert pod["podRef"] == {"name": "web", "namespace": "default", "uid": "uid-web"}
        assert [c["name"] for c in pod["containers"]] == ["a", "b"]
        assert [c["cpu"]["usageNanoCores"] for c in pod["containers"]] == [250_000_000] * 2
        assert pod["cpu"]["usageNanoCores"] == 500_000_000 and pod["memory"]["workingSetBytes"] == 2 << 20
        assert second["source"] == "podman" and second["window"] == "1.000s"
        await trio.sleep(5)
        assert collector.calls == 2  # complete: the next one waits the whole period
        await trio.sleep(5)
        assert collector.calls == 3 and sampler.summary()["pods"][0]["cpu"]["usageNanoCores"] == 50_000_000
        nursery.cancel_scope.cancel()


async def test_sampler_never_samples_quickly_twice_in_a_row(autojump_clock):
    """A container new at every sample (crash looping) must not have the node sampled every second."""
    calls = 0

    async def always_new() -> Sample:
        nonlocal calls
        calls += 1
        return Sample(0, 0, (_counters("c", 0, key=f"run-{calls}"),))

    sampler = StatsSampler("n1", always_new)
    async with trio.open_nursery() as nursery:
        await nursery.start(sampler.run)
        await trio.sleep(22.5)  # samples at 0, 1 (quick), 11, 12 (quick), 22
        assert calls == 5
        nursery.cancel_scope.cancel()


async def test_sampler_survives_a_failing_runtime(autojump_clock, caplog):
    collector = FakeCollector()
    sampler = StatsSampler("n1", collector.collect)
    async with trio.open_nursery() as nursery:
        await nursery.start(sampler.run)
        await trio.sleep(2)
        before = sampler.latest
        collector.fail = True
        await trio.sleep(20)
        assert sampler.latest is before and collector.calls > 3
        assert "cannot read usage: podman went away" in caplog.text
        nursery.cancel_scope.cancel()


def test_podman_counters_are_the_agents_running_containers():
    labels = {"nodeos.pod-namespace": "ns", "nodeos.pod-name": "web", "nodeos.pod-uid": "u1"}
    containers = [
        {"Id": "c1", "Labels": {**labels, "nodeos.container-name": "app"}},
        {"Id": "infra", "Labels": labels},  # the pod's pause container: no container name
        {"Id": "c2", "Labels": {**labels, "nodeos.container-name": "setup", "nodeos.init": "true"}},
        {"Id": "c3", "Labels": {**labels, "nodeos.container-name": "gone"}},  # stopped before the stats call
    ]
    figures = [{"ContainerID": "c1", "CPUNano": 7, "SystemNano": 9, "MemUsage": 4096},
               {"ContainerID": "infra", "CPUNano": 1}, {"ContainerID": "other", "CPUNano": 1}]
    assert container_counters(containers, figures) == (
        ContainerCounters("ns", "web", "u1", "app", "c1", 7, 4096, 9),)


def test_simulated_usage_is_a_stable_share_of_the_requests():
    container = {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
    usage = simulated_usage(container, "uid-1/app")
    assert usage == simulated_usage(container, "uid-1/app")
    assert 100_000_000 <= usage.cpu_nanocores <= 400_000_000
    assert 0.2 * 2**30 <= usage.memory_bytes <= 0.8 * 2**30
    shares = {simulated_usage(container, f"uid-{i}/app").cpu_nanocores for i in range(20)}
    assert len(shares) > 5  # pods differ
    idle = simulated_usage({"name": "x"}, "k")
    assert (idle.cpu_nanocores, idle.memory_bytes) == (IDLE_CPU, IDLE_MEMORY)


async def test_simulated_node_sums_its_pods():
    pods = [{"metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}"},
             "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}} for i in range(3)]
    sampler = StatsSampler("sim", SimulatedCollector(lambda: pods).collect)
    assert not await sampler.sample()  # made-up figures are complete at once
    summary = sampler.summary()
    assert summary["source"] == "simulated" and len(summary["pods"]) == 3
    pod_cpu = sum(p["cpu"]["usageNanoCores"] for p in summary["pods"])
    assert summary["node"]["cpu"]["usageNanoCores"] == NODE_BASE_CPU + pod_cpu


# -- the agent's server --------------------------------------------------------------------------------


async def _get(app: AgentApp, path: str, token: str | None = "secret") -> tuple[int, bytes]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers, "query_string": b""}
    sent: list[dict] = []

    async def receive() -> dict:
        await trio.sleep_forever()

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_agent_serves_the_summary_behind_its_token():
    app = AgentApp(None, "secret", lambda: {"node": {"nodeName": "n"}, "pods": []})
    status, body = await _get(app, "/stats/summary")
    assert status == 200 and json.loads(body) == {"node": {"nodeName": "n"}, "pods": []}
    assert (await _get(app, "/stats/summary", token=None))[0] == 401
    assert (await _get(app, "/stats/summary", token="wrong"))[0] == 401
    assert (await _get(app, "/containerLogs/ns/p/c"))[0] == 404  # a simulated node: nothing runs
    assert (await _get(AgentApp(None, "secret"), "/stats/summary"))[0] == 404


async def test_sampler_says_when_the_runtime_is_slow_to_answer(autojump_clock, caplog):
    async def slow() -> Sample:
        await trio.sleep(15)
        return Sample(0, 0)

    sampler = StatsSampler("n1", slow)
    async with trio.open_nursery() as nursery:
        await nursery.start(sampler.run)
        await trio.sleep(16)
        assert sampler.latest is not None
        assert "node n1: reading usage took 15.0s" in caplog.text
        nursery.cancel_scope.cancel()
