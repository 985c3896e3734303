import pytest

from nodeos.network.dns.forward import Upstream, parse_upstream, upstreams


def test_parse_upstream_with_and_without_port():
    assert parse_upstream("10.0.0.2") == Upstream("10.0.0.2", 53)
    assert parse_upstream("10.0.0.2:5353") == Upstream("10.0.0.2", 5353)
    with pytest.raises(ValueError):
        parse_upstream("resolver.example")


def test_configured_upstreams_win_over_the_hosts():
    assert upstreams(["192.0.2.1:5353"], ["192.0.2.53"], []) == [Upstream("192.0.2.1", 5353)]
    assert upstreams([], ["192.0.2.53", "192.0.2.54"], []) == [Upstream("192.0.2.53"), Upstream("192.0.2.54")]


def test_never_forwards_to_itself_and_skips_what_is_not_an_address():
    """The host's resolv.conf naming the node's own DNS (a host set up to use it) would loop every query."""
    found = upstreams([], ["10.244.1.1", "192.0.2.53", "not-an-ip", "192.0.2.53"], [Upstream("10.244.1.1", 53)])
    assert found == [Upstream("192.0.2.53", 53)]
    assert upstreams([], ["10.244.1.1"], [Upstream("10.244.1.1", 5353)]) == [Upstream("10.244.1.1", 53)]
