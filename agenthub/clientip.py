"""The client's address, the one way every part of AgentHub reads it
(throttles, login lock-outs, the metrics allowlist, websocket limits).

``X-Forwarded-For`` is written by whoever sends the request, so it is
believed only as far as trusted proxies vouch for it:

- ``TRUSTED_PROXY_COUNT = N``: exactly N proxies that append to the header
  stand in front of AgentHub; the client is the N-th address from the right.
- ``TRUSTED_PROXY_NETWORKS = [...]``: the peer and every hop are walked from
  the right while they are inside these networks; the first address outside
  them is the client.

With neither (the default) the header is ignored and the client is the
socket's peer address.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

UNKNOWN = "0.0.0.0"  # noqa: S104 - an address placeholder, not a bind


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _normalise(raw: str) -> str | None:
    """The address in canonical form, or None when ``raw`` is not one (an
    attacker may put anything in a header). Ports and brackets are dropped."""
    value = raw.strip().strip('"')
    if value.startswith("["):  # [v6]:port
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def resolve_client_ip(peer: str | None, forwarded_for: str | None) -> str:
    """The client address given the socket peer and the raw
    ``X-Forwarded-For`` value, under the trusted-proxy settings."""
    peer_ip = _normalise(peer or "") or UNKNOWN
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    networks = _networks(tuple(getattr(settings, "TRUSTED_PROXY_NETWORKS", ()) or ()))
    if not forwarded_for or (count <= 0 and not networks):
        return peer_ip
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
    if count > 0:
        if len(hops) < count:
            return peer_ip  # fewer hops than proxies: not written by our proxies
        return _normalise(hops[-count]) or peer_ip
    # Trusted networks: walk from the peer leftwards past trusted hops.
    chain = [peer_ip, *reversed(hops)]
    for position, hop in enumerate(chain):
        address = _normalise(hop) if position else hop
        if address is None:
            return chain[position - 1] if position else peer_ip
        if not any(ipaddress.ip_address(address) in net for net in networks):
            return address
    return _normalise(chain[-1]) or peer_ip


def client_ip(request) -> str:
    """The client address of a Django or DRF request."""
    meta = request.META
    return resolve_client_ip(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"))


def client_ip_from_scope(scope: dict) -> str:
    """The client address of an ASGI connection (websockets)."""
    client = scope.get("client") or (None, None)
    forwarded = None
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            text = value.decode("latin-1")
            forwarded = f"{forwarded}, {text}" if forwarded else text
    return resolve_client_ip(client[0], forwarded)
