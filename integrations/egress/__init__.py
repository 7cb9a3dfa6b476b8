"""SSRF-safe outbound HTTP for the agents' HTTP tools.

Agents call operator-defined HTTP endpoints and the built-in ``http_request``
tool with URLs that may come from a model, i.e. from untrusted input. Every
request made through :func:`http_fetch` is checked before anything is sent:

* only ``http`` and ``https``, a host is required, credentials in the URL
  (``user:pass@``) are refused;
* the host is resolved once and every resolved address must be public
  (no loopback, private, link-local/metadata, multicast, reserved, shared
  address space, unique/site-local IPv6, nor IPv6 forms embedding one of
  those) unless the host is on the caller's allowlist;
* the connection goes to the address that was checked: the URL is rewritten
  to the IP, the ``Host`` header and the TLS SNI / certificate hostname keep
  the real name, so a second DNS answer (rebinding) is never used;
* redirects are followed here, not by httpx, and every hop is checked again.

Network failures (connect errors, timeouts) are left as httpx exceptions for
the caller to map. Header values are never logged: they may hold credentials.
"""

from __future__ import annotations

import codecs
import ipaddress
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from integrations.egress.addresses import (
    EgressRefused,
    _is_public,
    _parse_ip_literal,
    _resolve,
    host_is_allowed,
)

logger = logging.getLogger(__name__)

__all__ = ["EgressRefused", "HttpResult", "check_url", "host_is_allowed", "http_fetch"]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_METHOD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# Request headers the caller may not set: computed here for each hop.
_MANAGED_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
# Credentials that must not follow a redirect to another host.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Content headers dropped when a redirect turns the request into a GET.
_BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language", "content-location"})


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: dict[str, str]
    text: str
    truncated: bool
    final_url: str
    elapsed_ms: float


@dataclass(frozen=True)
class _Target:
    """One checked hop: where to connect and what to call the server."""

    url: httpx.URL  # as requested (real host name)
    host: str  # ASCII host, canonical IP string for IP literals
    is_ip_literal: bool
    host_header: str
    addresses: tuple[str, ...]  # checked addresses, in connection order


# --------------------------------------------------------------------------
# URL checks


def _parse_url(url: str | httpx.URL) -> httpx.URL:
    if isinstance(url, httpx.URL):
        return url
    if not isinstance(url, str) or not url.strip():
        raise EgressRefused("The URL is empty.", code="invalid_url")
    try:
        parsed = httpx.URL(url.strip())
        netloc = urlsplit(url.strip()).netloc
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise EgressRefused(f"Invalid URL: {exc}", code="invalid_url") from exc
    if "@" in netloc and parsed.scheme in ALLOWED_SCHEMES:
        raise EgressRefused("Credentials in the URL are not allowed.", code="invalid_url")
    return parsed


def _check(url: httpx.URL, allow_hosts: tuple[str, ...]) -> _Target:
    """Validate one hop and resolve the addresses it may connect to."""
    if url.scheme not in ALLOWED_SCHEMES:
        raise EgressRefused(
            f"Only http and https URLs are allowed, not {url.scheme or 'none'!r}.", code="scheme_not_allowed"
        )
    if url.userinfo:
        raise EgressRefused("Credentials in the URL are not allowed.", code="invalid_url")
    try:
        raw_host = url.raw_host.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EgressRefused("Invalid host in the URL.", code="invalid_url") from exc
    if not raw_host:
        raise EgressRefused("The URL has no host.", code="invalid_url")
    if "%" in raw_host or "@" in raw_host:
        raise EgressRefused("Invalid host in the URL.", code="invalid_url")
    try:
        literal = _parse_ip_literal(raw_host)
    except ValueError as exc:
        raise EgressRefused(f"Invalid IP address {raw_host!r} in the URL.", code="invalid_url") from exc

    if url.port is not None and not 0 < url.port < 65536:
        raise EgressRefused(f"Invalid port {url.port} in the URL.", code="invalid_url")
    port = url.port or DEFAULT_PORTS[url.scheme]
    host = str(literal) if literal is not None else raw_host
    allowed = host_is_allowed(host, allow_hosts)
    addresses = [str(literal)] if literal is not None else _resolve(raw_host, port)

    if not allowed:
        for address in addresses:
            try:
                public = _is_public(ipaddress.ip_address(address))
            except ValueError:
                public = False
            if not public:
                what = "" if literal is not None else f" (resolves to {address})"
                raise EgressRefused(
                    f"Requests to {host}{what} are not allowed: not a public address.", code="host_not_allowed"
                )

    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if url.port is None else f"{bracketed}:{url.port}"
    return _Target(
        url=url, host=host, is_ip_literal=literal is not None, host_header=host_header, addresses=tuple(addresses)
    )


def check_url(url: str, allow_hosts: Iterable[str] = ()) -> list[str]:
    """Validate ``url`` and return the IP addresses a request may connect to.

    Raises :class:`EgressRefused` when the URL must not be fetched. IP
    literals are checked without any DNS lookup.
    """
    return list(_check(_parse_url(url), tuple(allow_hosts)).addresses)


# --------------------------------------------------------------------------
# Requests


def _make_client() -> httpx.Client:
    """The client requests go through (a seam for tests).

    trust_env=False: an environment proxy would make the connection to a
    host other than the checked address, and .netrc would add credentials.
    """
    return httpx.Client(follow_redirects=False, trust_env=False)


def _encode_body(body: str | bytes | dict | list | None) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, None
    if isinstance(body, (dict, list)):
        return json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json"
    if isinstance(body, str):
        return body.encode("utf-8"), None
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), None
    raise TypeError(f"Unsupported body type: {type(body).__name__}")


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _send(
    client: httpx.Client,
    method: str,
    target: _Target,
    headers: dict[str, str],
    content: bytes | None,
    deadline: float,
) -> httpx.Response:
    """Send to the checked addresses in order until one accepts the connection."""
    last_error: httpx.ConnectError | None = None
    for address in target.addresses:
        remaining = _remaining(deadline)
        if remaining <= 0:
            raise httpx.ConnectTimeout("The request timed out before it could be sent.")
        extensions = {}
        if target.url.scheme == "https" and not target.is_ip_literal:
            # TLS SNI and the certificate hostname check use the real name.
            extensions["sni_hostname"] = target.host
        request = client.build_request(
            method,
            target.url.copy_with(host=address, fragment=None),
            headers={**headers, "Host": target.host_header},
            content=content,
            timeout=httpx.Timeout(remaining),
            extensions=extensions,
        )
        try:
            return client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            logger.debug("http_fetch: could not connect to %s for %s, trying the next address", address, target.host)
            last_error = exc
    assert last_error is not None  # addresses is never empty
    raise last_error


def _read_body(response: httpx.Response, max_bytes: int, deadline: float) -> tuple[bytes, bool]:
    buffer = bytearray()
    for chunk in response.iter_bytes():
        room = max_bytes - len(buffer)
        if len(chunk) > room:
            buffer += chunk[:room]
            return bytes(buffer), True
        buffer += chunk
        if _remaining(deadline) <= 0:
            raise httpx.ReadTimeout("The response took longer than the timeout.", request=response.request)
    return bytes(buffer), False


def _decode(content: bytes, response: httpx.Response) -> str:
    encoding = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8"
    return content.decode(encoding, errors="replace")


def http_fetch(
    *,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: str | bytes | dict | list | None = None,
    timeout: float = 10.0,
    max_bytes: int = 64_000,
    allow_hosts: Iterable[str] = (),
    max_redirects: int = 5,
) -> HttpResult:
    """Make one HTTP request with the egress checks of this module.

    ``timeout`` bounds the whole exchange, redirects and body included.
    Raises :class:`EgressRefused` when a hop is refused, httpx exceptions
    (``httpx.ConnectError``, ``httpx.TimeoutException``, ...) on network
    failures.
    """
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise ValueError(f"Invalid HTTP method: {method!r}")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if max_bytes < 0 or max_redirects < 0:
        raise ValueError("max_bytes and max_redirects must not be negative")

    started = time.monotonic()
    deadline = started + timeout
    allow = tuple(allow_hosts)
    method = method.upper()
    content, content_type = _encode_body(body)
    send_headers = {
        str(name): value for name, value in (headers or {}).items() if str(name).lower() not in _MANAGED_HEADERS
    }
    if content_type and not any(name.lower() == "content-type" for name in send_headers):
        send_headers["Content-Type"] = content_type

    current = _parse_url(url)
    redirects = 0
    with _make_client() as client:
        while True:
            target = _check(current, allow)
            response = _send(client, method, target, send_headers, content, deadline)
            try:
                logger.debug(
                    "http_fetch %s %s://%s -> %s",
                    method,
                    target.url.scheme,
                    target.host_header,
                    response.status_code,
                )
                location = response.headers.get("location")
                if response.status_code in REDIRECT_STATUSES and location:
                    if redirects >= max_redirects:
                        raise EgressRefused(f"Stopped after {max_redirects} redirect(s).", code="too_many_redirects")
                    redirects += 1
                    try:
                        next_url = current.join(location.strip())
                    except (httpx.InvalidURL, ValueError) as exc:
                        raise EgressRefused("The redirect Location is not a valid URL.", code="invalid_url") from exc
                    status = response.status_code
                    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                        method = "GET"
                        content = None
                        send_headers = {k: v for k, v in send_headers.items() if k.lower() not in _BODY_HEADERS}
                    next_host = next_url.raw_host.lower()
                    downgraded = current.scheme == "https" and next_url.scheme != "https"
                    if next_host != current.raw_host.lower() or downgraded:
                        send_headers = {k: v for k, v in send_headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
                    current = next_url
                    continue
                data, truncated = _read_body(response, max_bytes, deadline)
                return HttpResult(
                    status=response.status_code,
                    headers={name.lower(): value for name, value in response.headers.items()},
                    text=_decode(data, response),
                    truncated=truncated,
                    final_url=str(current),
                    elapsed_ms=(time.monotonic() - started) * 1000,
                )
            finally:
                response.close()
                client.cookies.clear()  # no cookie jar shared between hops
