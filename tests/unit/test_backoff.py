"""The crash-loop back-off and restart policies, on a fake clock."""

import pytest

from nodeos.agent.backoff import RestartBackoff, should_restart


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def crash_loop(backoff: RestartBackoff, clock: FakeClock, key: str, times: int, ran_for: float = 1) -> list[float]:
    """Exit ``times`` times, each after running ``ran_for`` seconds once the previous wait ended."""
    delays = []
    for _ in range(times):
        delay = backoff.next_delay(key, ran_for=ran_for)
        delays.append(delay)
        clock.now += delay + ran_for
    return delays


def test_delays_double_from_10s_to_a_5_minute_cap():
    clock = FakeClock()
    assert crash_loop(RestartBackoff(clock=clock), clock, "c", 8) == [10, 20, 40, 80, 160, 300, 300, 300]


def test_remaining_counts_down_the_current_wait():
    clock = FakeClock()
    backoff = RestartBackoff(clock=clock)
    assert backoff.remaining("c") == 0
    backoff.next_delay("c", ran_for=0)
    backoff.next_delay("c", ran_for=0)
    assert backoff.remaining("c") == 20
    clock.now += 15
    assert backoff.remaining("c") == 5
    clock.now += 10
    assert backoff.remaining("c") == 0


def test_ten_minutes_of_running_resets_the_backoff():
    clock = FakeClock()
    backoff = RestartBackoff(clock=clock)
    crash_loop(backoff, clock, "c", 5)
    assert backoff.next_delay("c", ran_for=599) == 300  # not quite long enough
    assert backoff.next_delay("c", ran_for=600) == 10
    assert backoff.next_delay("c", ran_for=1) == 20


def test_the_clock_resets_it_when_the_worker_cannot_tell_how_long_it_ran():
    clock = FakeClock()
    backoff = RestartBackoff(clock=clock)
    crash_loop(backoff, clock, "c", 4)  # the last wait, 80 s, ended 1 s ago
    clock.now += 598
    assert backoff.next_delay("c", ran_for=0) == 160
    clock.now += 160 + 600
    assert backoff.next_delay("c", ran_for=0) == 10


def test_keys_are_independent_and_forget_starts_over():
    clock = FakeClock()
    backoff = RestartBackoff(clock=clock)
    crash_loop(backoff, clock, "a", 3)
    assert backoff.next_delay("b", ran_for=0) == 10
    assert backoff.next_delay("a", ran_for=0) == 80
    backoff.forget("a")
    backoff.forget("never-seen")
    assert backoff.remaining("a") == 0
    assert len(backoff) == 1
    assert backoff.next_delay("a", ran_for=0) == 10


def test_custom_schedule():
    clock = FakeClock()
    backoff = RestartBackoff(initial=1, cap=5, reset_after=30, clock=clock)
    assert crash_loop(backoff, clock, "c", 5) == [1, 2, 4, 5, 5]
    assert backoff.next_delay("c", ran_for=30) == 1


@pytest.mark.parametrize(("policy", "exit_code", "restart"), [
    ("Always", 0, True), ("Always", 1, True), ("Always", 137, True),
    ("OnFailure", 0, False), ("OnFailure", 1, True), ("OnFailure", 137, True), ("OnFailure", -1, True),
    ("Never", 0, False), ("Never", 1, False),
    ("", 0, True), ("Sometimes", 1, True),  # unknown policies act as the default, Always
])
def test_restart_policies(policy, exit_code, restart):
    assert should_restart(policy, exit_code) is restart
