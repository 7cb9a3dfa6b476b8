"""Which addresses and hosts outbound calls may reach: IP literals in every
legacy spelling, public-address checks, one DNS resolution per hop, and
the per-organization host allowlist."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Networks refused even where ipaddress's flags say "global" (or may, in some
# Python version): defence in depth on top of the flags.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", includes 0.0.0.0
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "::/96",  # IPv4-compatible (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")

_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"0[0-7]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")


class EgressRefused(Exception):
    """The request was refused before it was sent (or at a redirect).

    ``code`` is one of ``invalid_url``, ``scheme_not_allowed``,
    ``host_not_allowed``, ``dns_failed``, ``too_many_redirects``.
    """

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"EgressRefused({self.message!r}, code={self.code!r})"


# --------------------------------------------------------------------------
# Addresses


def _parse_ipv4_part(part: str) -> int:
    if not part:
        raise ValueError("empty part")
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not _OCTAL.fullmatch(part):
            raise ValueError("bad octal part")
        return int(part, 8)
    if not _DECIMAL.fullmatch(part):
        raise ValueError("bad decimal part")
    return int(part)


def _parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host in any inet_aton notation stands for.

    Follows the WHATWG URL rules: a host whose last label is a number
    (``2130706433``, ``127.1``, ``0177.0.0.1``, ``0x7f.1``) is an IPv4
    address and must parse as one (ValueError otherwise); any other host is
    a name (None).
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels = labels[:-1]
    last = labels[-1]
    if not (_DECIMAL.fullmatch(last) or _HEX.fullmatch(last)):
        return None
    if len(labels) > 4:
        raise ValueError("too many parts")
    numbers = [_parse_ipv4_part(label) for label in labels]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError("part out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _parse_ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells, None for a name; ValueError for a host
    that looks like an address but is not a valid one."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone identifiers are not allowed")
        return ipaddress.IPv6Address(host)
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        pass
    return _parse_legacy_ipv4(host)


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    if not ip.is_global:
        return False
    if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return False
    return not any(ip in net for net in _BLOCKED_V4)


def _is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public unicast address a tool may connect to."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d reaches a.b.c.d
        return _is_public_v4(ip.ipv4_mapped)
    if ip in _NAT64_WELL_KNOWN:  # 64:ff9b::a.b.c.d is translated to a.b.c.d
        return _is_public_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if not ip.is_global:
        return False
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_site_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    ):
        return False
    if any(ip in net for net in _BLOCKED_V6):
        return False
    if ip.sixtofour is not None and not _is_public_v4(ip.sixtofour):
        return False
    # Teredo embeds the relay server's and the client's IPv4 addresses.
    return ip.teredo is None or all(_is_public_v4(embedded) for embedded in ip.teredo)


def _resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in resolver order, deduplicated."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
        raise EgressRefused(f"Could not resolve host {host!r}.", code="dns_failed") from exc
    addresses: list[str] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EgressRefused(f"Host {host!r} has no IP address.", code="dns_failed")
    return addresses


# --------------------------------------------------------------------------
# Hosts and the allowlist


def _ascii_name(name: str) -> str | None:
    """A host name lower-cased, IDNA-encoded, without its trailing dot."""
    name = name.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        return None
    if not name.isascii():
        try:
            name = httpx.URL(scheme="http", host=name).raw_host.decode("ascii")
        except (httpx.InvalidURL, UnicodeError, ValueError):
            return None
    return name


def _canonical_host(host: str) -> tuple[str, bool] | None:
    """``(canonical form, is an IP)`` for a host or allowlist entry, None if
    it is not a valid host."""
    host = host.strip()
    try:
        ip = _parse_ip_literal(host.lower())
    except ValueError:
        return None
    if ip is not None:
        return str(ip), True
    name = _ascii_name(host)
    return (name, False) if name else None


def host_is_allowed(host: str, allow_hosts: Iterable[str]) -> bool:
    """Whether ``host`` is on the allowlist.

    Entries are host names or IP literals, compared case-insensitively and
    exactly (IP literals as addresses, so ``127.0.0.1`` also matches
    ``127.1``), or ``*.example.com``, which matches any subdomain of
    example.com at any depth but not example.com itself nor IP addresses.
    """
    if not isinstance(host, str):
        return False
    canonical = _canonical_host(host)
    if canonical is None:
        return False
    value, is_ip = canonical
    for entry in allow_hosts:
        if not isinstance(entry, str):
            continue
        entry = entry.strip()
        if entry.startswith("*."):
            suffix = _ascii_name(entry[2:])
            if is_ip or not suffix or "*" in suffix:
                continue
            if value.endswith("." + suffix):
                return True
        elif "*" not in entry:
            allowed = _canonical_host(entry)
            if allowed is not None and allowed == canonical:
                return True
    return False
