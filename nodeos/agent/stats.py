"""Usage figures of a node and its pods, served as the kubelet's Summary API (``GET /stats/summary``).

Design note. CPU usage is a *rate*: runtimes and ``/proc`` only give
cumulative CPU time, so a figure exists only between two samples of the same
counter. ``StatsSampler`` therefore samples in the background (every
``PERIOD`` seconds; ``QUICK_PERIOD`` after a sample that met counters with no
rate yet, but never twice in a row, so a new pod shows usage within seconds
rather than a period) and
answers requests from its latest sample, never from a call to the runtime in
the request's path. Memory is the working set, a level, as the kubelet
reports it (what ``kubectl top`` shows).

A ``Collector`` is the runtime's side: one call that reads the cumulative
counters now (Podman: ``nodeos.agent.podman.stats``; the simulator:
``nodeos.agent.simstats``). The node's own figures come from ``/proc``
(``read_node_counters``): busy CPU time of all CPUs, and memory in use as
``MemTotal - MemAvailable``.

The document is the Summary API's shape, reduced to what ``kubectl top``
and the metrics API need::

    {"node": {"nodeName", "cpu": {"time", "usageNanoCores"}, "memory": {"time", "workingSetBytes"}},
     "pods": [{"podRef": {"name", "namespace", "uid"}, "cpu", "memory",
               "containers": [{"name", "cpu", "memory"}]}],
     "source": "podman" | "simulated"}

``source`` is nodeos' own field (clients of the kubelet's API ignore unknown
ones): figures from the simulator are made up from the pods' requests and
must never be mistaken for measurements.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

__all__ = [
    "PERIOD",
    "ContainerCounters",
    "ContainerUsage",
    "CpuRates",
    "PodUsage",
    "Sample",
    "Snapshot",
    "StatsSampler",
    "Usage",
    "cpu_rate",
    "read_node_counters",
    "summary",
]

log = logging.getLogger(__name__)
PERIOD = 10.0  # seconds between samples, as the kubelet's housekeeping
QUICK_PERIOD = 1.0  # after a sample that found counters with no rate yet
NANO = 1_000_000_000


@dataclass(frozen=True)
class Usage:
    """CPU in nanocores (None until a rate exists) and the memory working set in bytes."""

    cpu_nanocores: int | None
    memory_bytes: int | None

    @property
    def complete(self) -> bool:
        return self.cpu_nanocores is not None and self.memory_bytes is not None


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    usage: Usage


@dataclass(frozen=True)
class PodUsage:
    namespace: str
    name: str
    uid: str
    containers: tuple[ContainerUsage, ...]

    @property
    def usage(self) -> Usage:
        """The containers' sum; unknown if any container's figure is unknown."""
        return Usage(_sum(c.usage.cpu_nanocores for c in self.containers),
                     _sum(c.usage.memory_bytes for c in self.containers))


@dataclass(frozen=True)
class Snapshot:
    """What the node and its pods used at ``time`` (RFC 3339), over ``window`` seconds."""

    node: Usage
    pods: tuple[PodUsage, ...]
    time: str
    window: float
    source: str


@dataclass(frozen=True)
class ContainerCounters:
    """One container's cumulative figures as a runtime reads them."""

    namespace: str
    pod: str
    uid: str
    name: str
    key: str  # what identifies this run of the container (a runtime's container id)
    cpu_ns: int  # CPU time used since the container started
    memory_bytes: int
    at_ns: int | None = None  # when the runtime read cpu_ns (its clock); None: when the sample was taken


@dataclass(frozen=True)
class Sample:
    """One reading: the node's busy CPU time and memory in use, and its containers' counters."""

    node_cpu_ns: int
    node_memory_bytes: int
    containers: tuple[ContainerCounters, ...] = ()
    source: str = "podman"
    # a collector that makes figures up (the simulator) gives the usage directly, not as counters
    usage: dict[str, Usage] = field(default_factory=dict)  # by ContainerCounters.key
    node_usage: Usage | None = None


def cpu_rate(previous: tuple[int, int] | None, current: tuple[int, int]) -> int | None:
    """Nanocores between two ``(cpu_ns, at_ns)`` readings of one counter; None without a usable previous
    one (none, no time between them, or a counter that went back: a restarted container)."""
    if previous is None:
        return None
    cpu = current[0] - previous[0]
    elapsed = current[1] - previous[1]
    if elapsed <= 0 or cpu < 0:
        return None
    return cpu * NANO // elapsed


class CpuRates:
    """The previous reading of each counter, to turn the next one into a rate."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}

    def rate(self, key: str, cpu_ns: int, at_ns: int) -> int | None:
        current = (cpu_ns, at_ns)
        rate = cpu_rate(self._last.get(key), current)
        self._last[key] = current
        return rate

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget counters that are gone (containers removed), so the table does not grow forever."""
        wanted = set(keys)
        self._last = {k: v for k, v in self._last.items() if k in wanted}


class StatsSampler:
    """Samples ``collect`` in the background and keeps the latest ``Snapshot`` for the Summary API."""

    def __init__(self, node_name: str, collect: Callable[[], Awaitable[Sample]], *, period: float = PERIOD,
                 quick_period: float = QUICK_PERIOD) -> None:
        self.node_name = node_name
        self.collect = collect
        self.period = period
        self.quick_period = quick_period
        self.latest: Snapshot | None = None
        self._rates = CpuRates()
        self._previous_at: int | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sample until cancelled; started at once (the first figures come one sample later)."""
        task_status.started()
        quick = False
        while True:
            incomplete = True
            began = trio.current_time()
            try:
                incomplete = await self.sample()
            except Exception as exc:  # a runtime in trouble: no fresh figures, and the next sample retries
                log.warning("node %s: cannot read usage: %s", self.node_name, exc)
            took = trio.current_time() - began
            if took > self.period:  # the figures are that much older than they look: say so once per sample
                log.warning("node %s: reading usage took %.1fs (the runtime is slow to answer)", self.node_name,
                            took)
            # never two quick ones in a row: a crash-looping container, new at every sample, costs no more
            quick = incomplete and not quick
            await trio.sleep(self.quick_period if quick else self.period)

    async def sample(self) -> bool:
        """Take one sample; True if some counter has no rate yet (the next sample should come soon)."""
        sample = await self.collect()
        at = trio.current_time()
        at_ns = int(at * NANO)
        window = 0.0 if self._previous_at is None else (at_ns - self._previous_at) / NANO
        self._previous_at = at_ns
        node = sample.node_usage or Usage(self._rates.rate("/", sample.node_cpu_ns, at_ns), sample.node_memory_bytes)
        pods = _pods(sample, self._rates, at_ns)
        self._rates.keep_only(["/", *(c.key for c in sample.containers)])
        self.latest = Snapshot(node, pods, _rfc3339_now(), window, sample.source)
        return not node.complete or any(not p.usage.complete for p in pods)

    def summary(self) -> dict[str, Any]:
        """The Summary API document of the latest sample (empty figures before the first)."""
        snapshot = self.latest or Snapshot(Usage(None, None), (), _rfc3339_now(), 0.0, "none")
        return summary(self.node_name, snapshot)


def _pods(sample: Sample, rates: CpuRates, at_ns: int) -> tuple[PodUsage, ...]:
    grouped: dict[tuple[str, str, str], list[ContainerUsage]] = {}
    for c in sample.containers:
        usage = sample.usage.get(c.key) or Usage(rates.rate(c.key, c.cpu_ns, c.at_ns or at_ns), c.memory_bytes)
        grouped.setdefault((c.namespace, c.pod, c.uid), []).append(ContainerUsage(c.name, usage))
    return tuple(PodUsage(ns, name, uid, tuple(sorted(containers, key=lambda c: c.name)))
                 for (ns, name, uid), containers in sorted(grouped.items()))


def summary(node_name: str, snapshot: Snapshot) -> dict[str, Any]:
    """The Summary API document (see the module's note) of one snapshot."""
    time = snapshot.time
    return {
        "node": {"nodeName": node_name, **_figures(snapshot.node, time)},
        "pods": [{"podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid}, **_figures(p.usage, time),
                  "containers": [{"name": c.name, **_figures(c.usage, time)} for c in p.containers]}
                 for p in snapshot.pods],
        "window": f"{snapshot.window:.3f}s",
        "source": snapshot.source,
    }


def _figures(usage: Usage, time: str) -> dict[str, Any]:
    """``cpu`` and ``memory`` as the kubelet writes them; a figure not known yet is left out."""
    cpu: dict[str, Any] = {"time": time}
    memory: dict[str, Any] = {"time": time}
    if usage.cpu_nanocores is not None:
        cpu["usageNanoCores"] = usage.cpu_nanocores
    if usage.memory_bytes is not None:
        memory["workingSetBytes"] = usage.memory_bytes
    return {"cpu": cpu, "memory": memory}


def read_node_counters(root: Path = Path("/")) -> tuple[int, int]:
    """``(busy CPU ns of all CPUs since boot, memory in use in bytes)`` from ``/proc``. Blocking.

    Busy is everything but idle and iowait on /proc/stat's ``cpu`` line (in
    clock ticks); memory in use is ``MemTotal - MemAvailable``, the host's
    working set (page cache that can be dropped does not count).
    """
    ticks = _cpu_ticks((root / "proc/stat").read_text())
    meminfo = _meminfo((root / "proc/meminfo").read_text())
    used = meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0)
    return ticks * NANO // os.sysconf("SC_CLK_TCK"), max(used, 0)


def _cpu_ticks(stat: str) -> int:
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
            return sum(values) - values[3] - values[4]
    raise ValueError("/proc/stat has no cpu line")


def _meminfo(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values


def _sum(values: Iterable[int | None]) -> int | None:
    total = 0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _rfc3339_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
