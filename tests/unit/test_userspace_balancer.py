"""The userspace proxy's endpoint choice: round robin, try-next order, ClientIP affinity and its timeout."""

from __future__ import annotations

from nodeos.network.proxy.balancer import Balancer

A, B, C = ("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 80)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def firsts(balancer: Balancer, n: int, client: str = "1.1.1.1") -> list[tuple[str, int]]:
    return [balancer.candidates(client)[0] for _ in range(n)]


def test_round_robin_starts_at_the_next_endpoint_and_lists_the_rest_to_try():
    balancer = Balancer([A, B, C])
    assert balancer.candidates("x") == [A, B, C]
    assert balancer.candidates("x") == [B, C, A]
    assert balancer.candidates("y") == [C, A, B]
    assert balancer.candidates("x") == [A, B, C]


def test_no_endpoints_no_candidates():
    assert Balancer().candidates("x") == []
    balancer = Balancer([A])
    balancer.update([], None)
    assert balancer.candidates("x") == []


def test_a_removed_endpoint_is_never_offered_again():
    balancer = Balancer([A, B, C])
    balancer.candidates("x")
    balancer.update([A, C], None)
    assert B not in {e for _ in range(6) for e in balancer.candidates("x")}
    assert set(firsts(balancer, 4)) == {A, C}


def test_same_endpoints_keep_the_rotation():
    balancer = Balancer([A, B, C])
    balancer.candidates("x")
    balancer.update([A, B, C], None)
    assert balancer.candidates("x")[0] == B


def test_without_affinity_connected_does_not_stick():
    balancer = Balancer([A, B])
    first = balancer.candidates("x")[0]
    balancer.connected("x", first)
    assert balancer.candidates("x")[0] != first


def test_affinity_sticks_a_client_until_the_timeout_from_its_last_connection():
    clock = Clock()
    balancer = Balancer([A, B, C], affinity_seconds=10, clock=clock)
    endpoint = balancer.candidates("x")[0]
    assert endpoint == A
    balancer.connected("x", endpoint)
    for _ in range(5):
        clock.now += 8  # each connection within the timeout of the previous one renews it
        assert balancer.candidates("x")[0] == endpoint
        balancer.connected("x", endpoint)
    assert balancer.candidates("y")[0] == B  # other clients still rotate
    clock.now += 11
    assert balancer.candidates("x")[0] == C  # expired: back in the rotation


def test_affinity_ends_when_the_endpoint_fails_or_leaves():
    clock = Clock()
    balancer = Balancer([A, B, C], affinity_seconds=100, clock=clock)
    balancer.connected("x", B)
    assert balancer.candidates("x")[0] == B
    balancer.failed("x", B)
    balancer.connected("y", C)
    balancer.update([A, B], 100)
    assert balancer.candidates("y")[0] in (A, B)
    balancer.connected("y", A)
    assert firsts(balancer, 3, "y") == [A, A, A]


def test_changing_the_affinity_timeout_forgets_sticky_clients():
    balancer = Balancer([A, B], affinity_seconds=100, clock=Clock())
    balancer.connected("x", B)
    balancer.update([A, B], None)
    assert len(set(firsts(balancer, 2, "x"))) == 2
