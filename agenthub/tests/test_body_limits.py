"""Request bodies are held to API_MAX_BODY_BYTES however they are sent:
with a Content-Length or chunked, on both Django stacks (the full one and
the lean chat one), in-process and through real servers (daphne, uvicorn)."""

import asyncio
import json
import socket

import httpx
import pytest
from asgiref.sync import async_to_sync
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import ApiKey
from agenthub.testing import run_daphne, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 1000


def _token(org, role="admin") -> str:
    refresh = RefreshToken.for_user(org.users[role])
    refresh["org"] = str(org.organization.pk)
    return str(refresh.access_token)


def call_asgi(path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]):
    """Runs one request through ``agenthub.asgi.application`` with the body
    in ``chunks`` (one ASGI message each); returns (status, json, messages
    the application pulled)."""
    from agenthub.asgi import application

    pulled = []
    queue = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]

    async def receive():
        if queue:
            pulled.append(queue[0])
            return queue.pop(0)
        await asyncio.Event().wait()  # the client stays until the response is sent

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    async_to_sync(application)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def _chunked(payload: bytes, size: int = 300) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


@pytest.mark.parametrize("path", ["/api/v1/api-keys", "/v1/chat/completions", "/api/v1/chat"])
def test_chunked_body_over_the_limit_is_413_on_both_stacks(org_a, settings, path):
    settings.API_MAX_BODY_BYTES = LIMIT
    payload = json.dumps({"name": "x" * 5000}).encode()
    status, body, pulled = call_asgi(path, _chunked(payload), [(b"authorization", f"Bearer {_token(org_a)}".encode())])
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"] == {"limit_bytes": LIMIT}
    assert "1000 bytes" in body["error"]["message"]
    assert body["request_id"]
    # Refused as soon as the limit was passed: 4 chunks of 300 bytes, not all 17.
    assert len(pulled) == 4
    assert ApiKey.objects.count() == 0


def test_chunked_body_under_the_limit_reaches_the_view(org_a, settings):
    settings.API_MAX_BODY_BYTES = LIMIT
    payload = json.dumps({"name": "chunked key"}).encode()
    status, body, _ = call_asgi(
        "/api/v1/api-keys", _chunked(payload, 5), [(b"authorization", f"Bearer {_token(org_a)}".encode())]
    )
    assert status == 201, body
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["chunked key"]


def test_chunked_body_under_the_limit_reaches_the_lean_stack(org_a, settings):
    settings.API_MAX_BODY_BYTES = LIMIT
    payload = json.dumps({"model": "no-such-agent", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, body, _ = call_asgi(
        "/v1/chat/completions", _chunked(payload, 7), [(b"authorization", f"Bearer {_token(org_a)}".encode())]
    )
    # The fields were read: the agent is looked up, not reported missing.
    assert (status, body["error"]["code"]) == (404, "agent_not_found"), body


def test_content_length_over_the_limit_is_413_unread(org_a, settings):
    settings.API_MAX_BODY_BYTES = LIMIT
    payload = json.dumps({"name": "x" * 5000}).encode()
    status, body, pulled = call_asgi(
        "/api/v1/api-keys",
        _chunked(payload),
        [(b"authorization", f"Bearer {_token(org_a)}".encode()), (b"content-length", str(len(payload)).encode())],
    )
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert f"is {len(payload)} bytes" in body["error"]["message"]
    assert pulled == []
    assert ApiKey.objects.count() == 0


def test_body_longer_than_its_content_length_is_413(org_a, settings):
    settings.API_MAX_BODY_BYTES = LIMIT
    payload = json.dumps({"name": "x" * 5000}).encode()
    status, body, _ = call_asgi(
        "/api/v1/api-keys",
        _chunked(payload),
        [(b"authorization", f"Bearer {_token(org_a)}".encode()), (b"content-length", b"20")],
    )
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert ApiKey.objects.count() == 0


def test_bad_content_length_is_400(settings):
    status, body, _ = call_asgi("/api/v1/auth/token/", [b"{}"], [(b"content-length", b"lots")])
    assert (status, body["error"]["code"]) == (400, "bad_request")


# --- real servers ----------------------------------------------------------------------------


SERVERS = {"daphne": lambda env: run_daphne(env=env), "uvicorn": lambda env: run_daphne(env=env, server="uvicorn")}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_chunked_bodies_through_a_real_server(org_a, server):
    def generator(payload: bytes):
        def chunks():
            yield from _chunked(payload)

        return chunks()

    big = json.dumps({"name": "x" * 5000}).encode()
    small = json.dumps({"username": "nobody", "password": "wrong"}).encode()
    headers = {"Authorization": f"Bearer {_token(org_a)}", "Content-Type": "application/json"}
    with SERVERS[server](subprocess_env(API_MAX_BODY_BYTES=LIMIT)) as base, httpx.Client(base_url=base) as client:
        for path in ("/api/v1/api-keys", "/v1/chat/completions"):
            response = client.post(path, content=generator(big), headers=headers)
            assert response.request.headers["transfer-encoding"] == "chunked"
            assert response.status_code == 413, response.text
            assert response.json()["error"]["code"] == "payload_too_large"
            assert response.headers["x-request-id"] == response.json()["request_id"]
        sized = client.post("/api/v1/api-keys", content=big, headers=headers)
        assert (sized.status_code, sized.json()["error"]["code"]) == (413, "payload_too_large")
        # A small chunked body is read, not taken for an empty one: wrong
        # credentials (401), not "username: This field is required" (400).
        login = client.post(
            "/api/v1/auth/token/", content=generator(small), headers={"Content-Type": "application/json"}
        )
        assert login.status_code == 401, login.text
        assert client.get("/health/live").status_code == 200
    assert ApiKey.objects.count() == 0


def test_request_data_too_big_is_413_not_400(rf):
    """Django renders RequestDataTooBig (raised when a view reads a form
    body past DATA_UPLOAD_MAX_MEMORY_SIZE) through handler400."""
    from django.core.exceptions import RequestDataTooBig

    from agenthub.errors import handler400

    api = handler400(rf.post("/api/v1/api-keys"), RequestDataTooBig("too big"))
    assert (api.status_code, json.loads(api.content)["error"]["code"]) == (413, "payload_too_large")
    assert handler400(rf.post("/admin/login/"), RequestDataTooBig("too big")).status_code == 413
    assert handler400(rf.post("/api/v1/api-keys"), None).status_code == 400


def _raw_exchange(base: str, head: bytes, body_part: bytes) -> bytes:
    """Sends the head and part of a body, leaves the rest unsent, and
    returns what the server answers meanwhile."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body_part)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def test_daphne_refuses_a_body_while_it_arrives(org_a):
    """The rest of the body is never sent: the answer comes at the limit, not
    after the whole body (daphne alone would wait for all of it)."""
    head = b"POST /api/v1/api-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    with run_daphne(env=subprocess_env(API_MAX_BODY_BYTES=LIMIT)) as base:
        declared = _raw_exchange(base, head + b"Content-Length: 50000000\r\n\r\n", b"{")
        chunk = b"x" * (LIMIT + 1)
        chunked = _raw_exchange(
            base, head + b"Transfer-Encoding: chunked\r\n\r\n", b"%x\r\n%s\r\n" % (len(chunk), chunk)
        )
        assert httpx.get(f"{base}/health/live").status_code == 200
    for answer in (declared, chunked):
        status_line, _, rest = answer.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer[:200]
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"]["code"] == "payload_too_large"
        assert body["error"]["details"] == {"limit_bytes": LIMIT}
    assert ApiKey.objects.count() == 0
