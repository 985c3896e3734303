"""When to restart a container that exited, and how long to wait first.

The kubelet's rules: ``restartPolicy`` decides *whether* (Always, OnFailure,
Never); a per-container back-off decides *when*. The first restart waits
10 s, each further one twice as long, up to 5 min; while a container waits,
its status says ``waiting`` with reason ``CrashLoopBackOff``. A container
that ran for 10 min before it exited is healthy enough that its history is
forgotten, and the next wait is 10 s again.

Keys are whatever the pod worker names a container by (pod uid + container
name): the back-off must outlive each container run, since every restart is
a new Podman container. The worker calls ``forget`` when the pod goes away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RESTART_POLICIES", "RestartBackoff", "should_restart"]

RESTART_POLICIES = ("Always", "OnFailure", "Never")


def should_restart(policy: str, exit_code: int) -> bool:
    """Whether a container that exited with ``exit_code`` is started again under the pod's ``policy``.

    An unknown or empty policy counts as Always, the Kubernetes default: the
    API server validates the field, and a bad value must not make the agent
    give up on a container.
    """
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True


@dataclass
class _Entry:
    delay: float  # the last delay handed out
    until: float  # clock time at which that delay ends


class RestartBackoff:
    """Crash-loop back-off per container key: 10 s, doubling, capped at 5 min; forgotten after 10 min of running."""

    def __init__(self, initial: float = 10, cap: float = 300, reset_after: float = 600,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial, self.cap, self.reset_after = initial, cap, reset_after
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def next_delay(self, key: str, *, ran_for: float) -> float:
        """The wait before restarting ``key``, whose container just exited after running ``ran_for`` seconds.

        The history also lapses when ``reset_after`` seconds passed since the
        last wait ended, whatever ``ran_for`` says: a worker that cannot tell
        how long a container ran (say, after an agent restart) passes 0 and
        still gets the kubelet's answer.
        """
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or ran_for >= self.reset_after or now - entry.until >= self.reset_after:
            delay = min(self.initial, self.cap)
        else:
            delay = min(entry.delay * 2, self.cap)
        self._entries[key] = _Entry(delay, now + delay)
        return delay

    def remaining(self, key: str) -> float:
        """Seconds until ``key`` may restart (0 if it may now): how long to keep saying CrashLoopBackOff."""
        entry = self._entries.get(key)
        return 0.0 if entry is None else max(0.0, entry.until - self._clock())

    def forget(self, key: str) -> None:
        """Drop ``key``'s history (its pod is gone); a key never seen is no error."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
