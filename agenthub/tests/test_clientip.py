import pytest

from agenthub.clientip import client_ip_from_scope, resolve_client_ip


@pytest.mark.parametrize(
    ("count", "networks", "peer", "header", "expected"),
    [
        # No trusted proxy: the header is never believed.
        (0, [], "203.0.113.9", "198.51.100.1", "203.0.113.9"),
        (0, [], "203.0.113.9", None, "203.0.113.9"),
        # One proxy appends the real client; whatever the client wrote is left of it.
        (1, [], "10.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        (2, [], "10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
        # Fewer hops than proxies: the header was not written by them.
        (2, [], "10.0.0.2", "198.51.100.7", "10.0.0.2"),
        # Garbage where the client should be: fall back to the peer.
        (1, [], "10.0.0.2", "not-an-ip", "10.0.0.2"),
        # Trusted networks: walk left past trusted hops.
        (0, ["10.0.0.0/8"], "10.0.0.2", "6.6.6.6, 198.51.100.7, 10.1.1.1", "198.51.100.7"),
        (0, ["10.0.0.0/8"], "203.0.113.9", "198.51.100.7", "203.0.113.9"),
        (0, ["10.0.0.0/8"], "10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
        (0, [], "::ffff:192.0.2.1", None, "192.0.2.1"),
    ],
)
def test_resolve_client_ip(settings, count, networks, peer, header, expected):
    settings.TRUSTED_PROXY_COUNT = count
    settings.TRUSTED_PROXY_NETWORKS = networks
    assert resolve_client_ip(peer, header) == expected


def test_rotating_forwarded_for_does_not_change_the_address(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    seen = {resolve_client_ip("203.0.113.9", f"198.51.100.{n}") for n in range(50)}
    assert seen == {"203.0.113.9"}


def test_scope_reads_the_peer_and_the_header(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    scope = {"client": ("10.0.0.2", 5555), "headers": [(b"x-forwarded-for", b"198.51.100.7")]}
    assert client_ip_from_scope(scope) == "198.51.100.7"
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip_from_scope(scope) == "10.0.0.2"
