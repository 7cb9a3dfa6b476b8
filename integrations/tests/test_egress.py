"""The SSRF-safe outbound HTTP client (integrations.egress).

A real HTTP server on 127.0.0.1 stands in for both "an internal service
that must not be reached" and "an allowlisted backend". No test uses the
internet: public names resolve through a fake getaddrinfo and requests to
public addresses go to an httpx.MockTransport.
"""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from integrations import egress
from integrations.egress import EgressRefused, HttpResult, check_url, host_is_allowed, http_fetch

pytestmark = []

REAL_GETADDRINFO = socket.getaddrinfo
BIG_BODY_SIZE = 200_000


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body,
            }
        )
        return body

    def _send(self, status: int, body: bytes = b"", content_type: str = "text/plain", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        body = self._record()
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        port = self.server.server_address[1]
        route = parts.path
        if route == "/json":
            self._send(200, json.dumps({"ok": True}).encode(), "application/json")
        elif route == "/echo":
            echoed = {
                "method": self.command,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body.decode("utf-8"),
            }
            self._send(200, json.dumps(echoed).encode(), "application/json")
        elif route == "/big":
            self._send(200, b"x" * BIG_BODY_SIZE)
        elif route == "/latin1":
            self._send(200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif route == "/redirect-same":
            self._send(302, headers={"Location": "/json"})
        elif route == "/redirect-localhost":
            self._send(302, headers={"Location": f"http://localhost:{port}/json"})
        elif route == "/redirect-metadata":
            self._send(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        elif route == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif route == "/redirect-to":
            self._send(int(query.get("status", "302")), headers={"Location": query["location"]})
        elif route == "/no-location":
            self._send(302, b"moved somewhere")
        elif route == "/slow":
            time.sleep(1.5)
            self._send(200, b"late")
        else:
            self._send(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []

    def handle_error(self, request, client_address):
        pass  # clients that stop reading early (truncation) break the pipe


class _Site:
    def __init__(self, server: _Server):
        self.server = server
        self.port = server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict]:
        return self.server.requests

    @property
    def paths(self) -> list[str]:
        return [request["path"] for request in self.server.requests]


@pytest.fixture(scope="module")
def _server():
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def site(_server) -> _Site:
    _server.requests.clear()
    return _Site(_server)


def _fake_dns(monkeypatch, names: dict[str, list[str]]) -> list[str]:
    """Make ``names`` resolve to the given addresses; others resolve for real.
    Returns the list of looked-up fake names (one entry per lookup)."""
    lookups: list[str] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        key = host.decode() if isinstance(host, bytes) else host
        if key in names:
            lookups.append(key)
            results = []
            for address in names[key]:
                if ":" in address:
                    results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port or 0, 0, 0)))
                else:
                    results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0)))
            return results
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    return lookups


def _no_dns(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("getaddrinfo must not be called")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _mock_transport(monkeypatch, handler) -> list[httpx.Request]:
    """Route http_fetch through an httpx.MockTransport; returns the requests seen."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    monkeypatch.setattr(
        egress, "_make_client", lambda: httpx.Client(transport=httpx.MockTransport(record), follow_redirects=False)
    )
    return seen


# --------------------------------------------------------------------------
# Refused before anything is sent


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("127.0.0.1", "host_not_allowed"),
        ("127.0.0.2", "host_not_allowed"),
        ("[::1]", "host_not_allowed"),
        ("[::ffff:127.0.0.1]", "host_not_allowed"),
        ("[::ffff:7f00:1]", "host_not_allowed"),
        ("[::127.0.0.1]", "host_not_allowed"),  # IPv4-compatible
        ("2130706433", "host_not_allowed"),  # decimal
        ("0x7f000001", "host_not_allowed"),  # hex
        ("0177.1", "host_not_allowed"),  # octal, short
        ("0x7f.0.0.1", "host_not_allowed"),
        ("127.1", "host_not_allowed"),  # short
        ("127.0.0.1.", "host_not_allowed"),  # trailing dot
        ("0177.0.0.1", "invalid_url"),  # octal dotted quad: refused by the URL parser
        ("0.0.0.0", "host_not_allowed"),  # noqa: S104
        ("0", "host_not_allowed"),
        ("[::]", "host_not_allowed"),
        ("10.0.0.1", "host_not_allowed"),
        ("172.16.5.4", "host_not_allowed"),
        ("192.168.1.1", "host_not_allowed"),
        ("100.64.0.1", "host_not_allowed"),
        ("169.254.169.254", "host_not_allowed"),
        ("[::ffff:169.254.169.254]", "host_not_allowed"),
        ("[fe80::1]", "host_not_allowed"),
        ("[fc00::1]", "host_not_allowed"),
        ("[fd12:3456::1]", "host_not_allowed"),
        ("[fec0::1]", "host_not_allowed"),
        ("224.0.0.1", "host_not_allowed"),
        ("[ff02::1]", "host_not_allowed"),
        ("240.0.0.1", "host_not_allowed"),
        ("255.255.255.255", "host_not_allowed"),
        ("198.18.0.1", "host_not_allowed"),
        ("[64:ff9b::7f00:1]", "host_not_allowed"),  # NAT64 of 127.0.0.1
        ("[2002:7f00:1::]", "host_not_allowed"),  # 6to4 of 127.0.0.1
        ("1.2.3.4.5", "invalid_url"),
        ("foo.123", "invalid_url"),
        ("256.256.256.256", "invalid_url"),
        ("[fe80::1%25eth0]", "invalid_url"),
    ],
)
def test_internal_addresses_are_refused_before_any_request(site, host, code):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"http://{host}:{site.port}/json")
    assert caught.value.code == code
    assert site.requests == []


def test_dns_name_resolving_to_loopback_is_refused(site, monkeypatch):
    lookups = _fake_dns(monkeypatch, {"internal.example.test": ["127.0.0.1"]})

    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"http://internal.example.test:{site.port}/json")

    assert caught.value.code == "host_not_allowed"
    assert lookups == ["internal.example.test"]
    assert site.requests == []


def test_dns_name_with_one_private_address_among_public_ones_is_refused(monkeypatch):
    _fake_dns(monkeypatch, {"mixed.example.test": ["93.184.216.34", "10.1.2.3"]})

    with pytest.raises(EgressRefused) as caught:
        check_url("https://mixed.example.test/")

    assert caught.value.code == "host_not_allowed"


def test_dns_failure_is_refused(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)

    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url="https://nowhere.example.test/")

    assert caught.value.code == "dns_failed"


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)"]
)
def test_other_schemes_are_refused(site, url):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=url, allow_hosts=["127.0.0.1"])

    assert caught.value.code == "scheme_not_allowed"
    assert site.requests == []


@pytest.mark.parametrize("userinfo", ["user:pass@", "user@", ":pass@", "@"])
def test_credentials_in_the_url_are_refused(site, userinfo):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"http://{userinfo}127.0.0.1:{site.port}/json", allow_hosts=["127.0.0.1"])

    assert caught.value.code == "invalid_url"
    assert site.requests == []


@pytest.mark.parametrize(
    "url",
    ["", "http:///path", "http://", "/relative/path", "http://[::1/", "http://93.184.216.34:99999/", "http://[::1]:0/"],
)
def test_invalid_urls_are_refused(url):
    with pytest.raises(EgressRefused) as caught:
        check_url(url)

    assert caught.value.code in {"invalid_url", "scheme_not_allowed"}


def test_refusal_carries_code_and_message():
    with pytest.raises(EgressRefused) as caught:
        check_url("http://169.254.169.254/latest/meta-data/")

    assert caught.value.code == "host_not_allowed"
    assert caught.value.message == str(caught.value)
    assert "169.254.169.254" in caught.value.message


# --------------------------------------------------------------------------
# check_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://93.184.216.34/", ["93.184.216.34"]),
        ("https://93.184.216.34:8443/path?q=1", ["93.184.216.34"]),
        ("http://1572395042/", ["93.184.216.34"]),  # decimal form of a public address
        ("http://0x5d.0xb8.0xd8.0x22/", ["93.184.216.34"]),
        ("http://[2606:2800:220:1:248:1893:25c8:1946]/", ["2606:2800:220:1:248:1893:25c8:1946"]),
        ("http://[64:ff9b::5db8:d822]/", ["64:ff9b::5db8:d822"]),  # NAT64 of a public address
    ],
)
def test_check_url_accepts_public_ip_literals_without_dns(monkeypatch, url, expected):
    _no_dns(monkeypatch)

    assert check_url(url) == expected


def test_check_url_returns_resolved_addresses_in_order(monkeypatch):
    _fake_dns(
        monkeypatch, {"api.example.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34"]}
    )

    assert check_url("https://API.Example.Test/v1") == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]


def test_check_url_allowlisted_host_skips_the_address_check(monkeypatch):
    _fake_dns(monkeypatch, {"backend.corp.test": ["10.0.0.7"]})

    assert check_url("http://backend.corp.test/", allow_hosts=["*.corp.test"]) == ["10.0.0.7"]
    with pytest.raises(EgressRefused):
        check_url("http://backend.corp.test/", allow_hosts=["other.corp.test"])


# --------------------------------------------------------------------------
# host_is_allowed


@pytest.mark.parametrize(
    ("host", "allow", "expected"),
    [
        ("api.example.com", ["api.example.com"], True),
        ("API.Example.COM", ["api.example.com"], True),
        ("api.example.com", ["API.EXAMPLE.COM"], True),
        ("api.example.com.", ["api.example.com"], True),
        ("api.example.com", ["example.com"], False),
        ("example.com", ["api.example.com"], False),
        ("api.example.com", ["*.example.com"], True),
        ("a.b.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),  # not the apex
        ("badexample.com", ["*.example.com"], False),
        ("example.com.evil.test", ["*.example.com"], False),
        ("api.example.com", ["*"], False),
        ("api.example.com", ["*example.com"], False),
        ("api.example.com", [], False),
        ("127.0.0.1", ["127.0.0.1"], True),
        ("127.1", ["127.0.0.1"], True),  # same address, other notation
        ("127.0.0.2", ["127.0.0.1"], False),
        ("127.0.0.1", ["*.0.0.1"], False),  # wildcards never match addresses
        ("::1", ["[::1]"], True),
        ("[::1]", ["0:0::1"], True),
        ("::ffff:127.0.0.1", ["127.0.0.1"], False),
        ("localhost", ["127.0.0.1"], False),
        ("", ["*.example.com", ""], False),
    ],
)
def test_host_is_allowed(host, allow, expected):
    assert host_is_allowed(host, allow) is expected


def test_host_is_allowed_accepts_any_iterable():
    assert host_is_allowed("api.example.com", (entry for entry in ["x.test", "api.example.com"]))


# --------------------------------------------------------------------------
# Allowlisted requests to the local server


def test_allowlisted_loopback_returns_status_and_body(site):
    result = http_fetch(method="GET", url=f"{site.base}/json", allow_hosts=["127.0.0.1"])

    assert isinstance(result, HttpResult)
    assert result.status == 200
    assert json.loads(result.text) == {"ok": True}
    assert result.headers["content-type"] == "application/json"
    assert result.truncated is False
    assert result.final_url == f"{site.base}/json"
    assert result.elapsed_ms >= 0
    assert site.paths == ["/json"]


def test_host_header_is_the_original_host_and_port(site):
    result = http_fetch(method="GET", url=f"{site.base}/echo", allow_hosts=["127.0.0.1"])

    assert json.loads(result.text)["headers"]["host"] == f"127.0.0.1:{site.port}"


def test_connection_goes_to_the_checked_address_with_the_name_in_host(site, monkeypatch):
    lookups = _fake_dns(monkeypatch, {"backend.example.test": ["127.0.0.1"]})

    result = http_fetch(
        method="GET",
        url=f"http://backend.example.test:{site.port}/echo",
        headers={"Host": "evil.test"},
        allow_hosts=["backend.example.test"],
    )

    assert result.status == 200
    assert json.loads(result.text)["headers"]["host"] == f"backend.example.test:{site.port}"
    assert result.final_url == f"http://backend.example.test:{site.port}/echo"
    assert lookups == ["backend.example.test"]  # resolved once: no rebinding window


def test_next_address_is_tried_when_connecting_fails(site, monkeypatch):
    # Only 127.0.0.1 listens: 127.0.0.2 refuses the connection.
    _fake_dns(monkeypatch, {"multi.example.test": ["127.0.0.2", "127.0.0.1"]})

    result = http_fetch(
        method="GET", url=f"http://multi.example.test:{site.port}/json", allow_hosts=["multi.example.test"]
    )

    assert result.status == 200
    assert site.paths == ["/json"]


def test_post_dict_body_arrives_as_json(site):
    result = http_fetch(
        method="post", url=f"{site.base}/echo", body={"name": "Zoë", "n": [1, 2]}, allow_hosts=["127.0.0.1"]
    )

    echoed = json.loads(result.text)
    assert echoed["method"] == "POST"
    assert echoed["headers"]["content-type"] == "application/json"
    assert json.loads(echoed["body"]) == {"name": "Zoë", "n": [1, 2]}


def test_str_and_bytes_bodies(site):
    as_str = http_fetch(method="PUT", url=f"{site.base}/echo", body="héllo", allow_hosts=["127.0.0.1"])
    as_bytes = http_fetch(
        method="PUT",
        url=f"{site.base}/echo",
        body=b"raw",
        headers={"Content-Type": "application/octet-stream"},
        allow_hosts=["127.0.0.1"],
    )

    assert json.loads(as_str.text)["body"] == "héllo"
    assert json.loads(as_bytes.text)["body"] == "raw"
    assert json.loads(as_bytes.text)["headers"]["content-type"] == "application/octet-stream"


def test_body_is_truncated_at_max_bytes(site):
    result = http_fetch(method="GET", url=f"{site.base}/big", max_bytes=1000, allow_hosts=["127.0.0.1"])

    assert result.truncated is True
    assert result.text == "x" * 1000


def test_body_that_fits_is_not_truncated(site):
    result = http_fetch(method="GET", url=f"{site.base}/big", max_bytes=BIG_BODY_SIZE, allow_hosts=["127.0.0.1"])

    assert result.truncated is False
    assert len(result.text) == BIG_BODY_SIZE


def test_body_is_decoded_with_the_response_charset(site):
    result = http_fetch(method="GET", url=f"{site.base}/latin1", allow_hosts=["127.0.0.1"])

    assert result.text == "café"


def test_network_errors_propagate_as_httpx_exceptions():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(httpx.ConnectError):
        http_fetch(method="GET", url=f"http://127.0.0.1:{closed_port}/", allow_hosts=["127.0.0.1"])


def test_timeout_propagates_as_httpx_timeout(site):
    with pytest.raises(httpx.TimeoutException):
        http_fetch(method="GET", url=f"{site.base}/slow", timeout=0.3, allow_hosts=["127.0.0.1"])


def test_header_values_are_never_logged(site, caplog):
    caplog.set_level(logging.DEBUG, logger="integrations.egress")

    http_fetch(
        method="GET",
        url=f"{site.base}/redirect-same",
        headers={"Authorization": "Bearer secret-token-123", "X-Api-Key": "key-456"},
        allow_hosts=["127.0.0.1"],
    )

    assert "secret-token-123" not in caplog.text
    assert "key-456" not in caplog.text


# --------------------------------------------------------------------------
# Redirects


def test_redirect_to_the_same_allowlisted_host_is_followed(site):
    result = http_fetch(method="GET", url=f"{site.base}/redirect-same", allow_hosts=["127.0.0.1"])

    assert result.status == 200
    assert json.loads(result.text) == {"ok": True}
    assert result.final_url == f"{site.base}/json"
    assert site.paths == ["/redirect-same", "/json"]


def test_redirect_to_localhost_not_allowlisted_is_refused(site):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"{site.base}/redirect-localhost", allow_hosts=["127.0.0.1"])

    assert caught.value.code == "host_not_allowed"
    assert site.paths == ["/redirect-localhost"]


def test_redirect_to_metadata_is_refused(site):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"{site.base}/redirect-metadata", allow_hosts=["127.0.0.1"])

    assert caught.value.code == "host_not_allowed"
    assert site.paths == ["/redirect-metadata"]


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("http://[::1]:1/", "host_not_allowed"),
        ("http://2130706434/", "host_not_allowed"),  # 127.0.0.2: not the allowlisted 127.0.0.1
        ("file:///etc/passwd", "scheme_not_allowed"),
        ("http://user:pw@127.0.0.1/", "invalid_url"),
    ],
)
def test_every_redirect_hop_is_checked(site, location, code):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(
            method="GET",
            url=f"{site.base}/redirect-to?location={location}",
            allow_hosts=["127.0.0.1"],
        )

    assert caught.value.code == code
    assert len(site.requests) == 1


def test_redirect_loop_stops_at_max_redirects(site):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"{site.base}/loop", max_redirects=3, allow_hosts=["127.0.0.1"])

    assert caught.value.code == "too_many_redirects"
    assert site.paths == ["/loop"] * 4


def test_no_redirects_allowed_with_max_redirects_zero(site):
    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url=f"{site.base}/redirect-same", max_redirects=0, allow_hosts=["127.0.0.1"])

    assert caught.value.code == "too_many_redirects"
    assert site.paths == ["/redirect-same"]


def test_redirect_without_location_is_returned_as_is(site):
    result = http_fetch(method="GET", url=f"{site.base}/no-location", allow_hosts=["127.0.0.1"])

    assert result.status == 302
    assert result.text == "moved somewhere"


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "keeps_body"),
    [
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (302, "POST", "GET", False),
        (301, "POST", "GET", False),
        (302, "PUT", "PUT", True),
        (307, "POST", "POST", True),
        (308, "POST", "POST", True),
    ],
)
def test_redirect_method_rewriting(site, status, method, expected_method, keeps_body):
    result = http_fetch(
        method=method,
        url=f"{site.base}/redirect-to?status={status}&location=/echo",
        body={"a": 1},
        allow_hosts=["127.0.0.1"],
    )

    echoed = json.loads(result.text)
    assert site.paths == [f"/redirect-to?status={status}&location=/echo", "/echo"]
    assert site.requests[0]["method"] == method
    assert echoed["method"] == expected_method
    if keeps_body:
        assert json.loads(echoed["body"]) == {"a": 1}
        assert echoed["headers"]["content-type"] == "application/json"
    else:
        assert echoed["body"] == ""
        assert "content-type" not in echoed["headers"]


def test_authorization_is_kept_on_the_same_host(site):
    result = http_fetch(
        method="GET",
        url=f"{site.base}/redirect-to?location=/echo",
        headers={"Authorization": "Bearer t0ken"},
        allow_hosts=["127.0.0.1"],
    )

    assert json.loads(result.text)["headers"]["authorization"] == "Bearer t0ken"


def test_authorization_is_dropped_when_redirected_to_another_host(site, monkeypatch):
    _fake_dns(monkeypatch, {"other.example.test": ["127.0.0.1"]})

    result = http_fetch(
        method="GET",
        url=f"{site.base}/redirect-to?location=http://other.example.test:{site.port}/echo",
        headers={"Authorization": "Bearer t0ken", "Cookie": "session=abc", "X-Trace": "1"},
        allow_hosts=["127.0.0.1", "other.example.test"],
    )

    echoed = json.loads(result.text)
    assert site.requests[0]["headers"]["authorization"] == "Bearer t0ken"
    assert "authorization" not in echoed["headers"]
    assert "cookie" not in echoed["headers"]
    assert echoed["headers"]["x-trace"] == "1"
    assert echoed["headers"]["host"] == f"other.example.test:{site.port}"
    assert result.final_url == f"http://other.example.test:{site.port}/echo"


# --------------------------------------------------------------------------
# Pinning and TLS names (mock transport: no network)


def test_https_connects_to_the_ip_with_sni_and_host_of_the_name(monkeypatch):
    _fake_dns(monkeypatch, {"api.example.test": ["93.184.216.34"]})
    seen = _mock_transport(monkeypatch, lambda request: httpx.Response(200, text="hi"))

    result = http_fetch(method="GET", url="https://api.example.test/v1/items?x=1")

    assert result.status == 200
    assert result.text == "hi"
    assert result.final_url == "https://api.example.test/v1/items?x=1"
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34/v1/items?x=1"
    assert request.headers["host"] == "api.example.test"
    assert request.extensions["sni_hostname"] == "api.example.test"


def test_ipv6_address_is_bracketed_and_port_kept_in_host(monkeypatch):
    _fake_dns(monkeypatch, {"v6.example.test": ["2606:2800:220:1:248:1893:25c8:1946"]})
    seen = _mock_transport(monkeypatch, lambda request: httpx.Response(204))

    http_fetch(method="GET", url="https://v6.example.test:8443/")

    (request,) = seen
    assert str(request.url) == "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/"
    assert request.headers["host"] == "v6.example.test:8443"
    assert request.extensions["sni_hostname"] == "v6.example.test"


def test_plain_http_and_ip_literals_get_no_sni(monkeypatch):
    _fake_dns(monkeypatch, {"api.example.test": ["93.184.216.34"]})
    seen = _mock_transport(monkeypatch, lambda request: httpx.Response(200))

    http_fetch(method="GET", url="http://api.example.test/")
    http_fetch(method="GET", url="https://93.184.216.34/")

    assert ["sni_hostname" in request.extensions for request in seen] == [False, False]
    assert seen[1].headers["host"] == "93.184.216.34"


def test_redirect_to_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    lookups = _fake_dns(monkeypatch, {"api.example.test": ["93.184.216.34"], "rebind.example.test": ["10.0.0.5"]})
    seen = _mock_transport(
        monkeypatch, lambda request: httpx.Response(302, headers={"Location": "https://rebind.example.test/admin"})
    )

    with pytest.raises(EgressRefused) as caught:
        http_fetch(method="GET", url="https://api.example.test/")

    assert caught.value.code == "host_not_allowed"
    assert len(seen) == 1
    assert lookups == ["api.example.test", "rebind.example.test"]


def test_connect_error_on_every_address_propagates(monkeypatch):
    _fake_dns(monkeypatch, {"api.example.test": ["93.184.216.34", "93.184.216.35"]})

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    seen = _mock_transport(monkeypatch, refuse)

    with pytest.raises(httpx.ConnectError):
        http_fetch(method="GET", url="https://api.example.test/")

    assert [request.url.host for request in seen] == ["93.184.216.34", "93.184.216.35"]
