"""Operator-defined HTTP tools end to end, like the first seed's work-order
and asset search: a turn calls the organization's backend (a real HTTP
server on loopback) with the tool's credential, only because the
organization allowlisted that host; without the allowlist, and for
redirects into private space, the call is refused (SSRF)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.callers import Caller
from chat.tests.helpers import make_live_agent, open_chat, receive_until, ticket_for
from integrations.models import Credential, CredentialKind, EgressAllowedHost
from tools.models import Draft, DraftStatus, HttpTool, InvocationStatus, ToolInvocation
from tools.registry import ToolContext
from tools.services.catalog import tool_definition_get
from tools.services.drafts import draft_confirm
from tools.services.execution import tool_run

pytestmark = pytest.mark.django_db(transaction=True)

WORK_ORDERS = [{"id": "WO-1", "title": "Replace pump seal", "status": "open"}]


class Backend(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), BackendHandler)
        self.requests: list[dict] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class BackendHandler(BaseHTTPRequestHandler):
    server: Backend

    def log_message(self, format, *args):
        pass

    def _reply(self, status: int, payload, headers=None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.server.requests.append(
            {
                "method": self.command,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": json.loads(body) if body else None,
            }
        )
        if parts.path == "/api/agent/tools/work-orders/search":
            return self._reply(200, {"results": WORK_ORDERS})
        if parts.path.startswith("/api/assets/"):
            return self._reply(200, {"asset": parts.path.rsplit("/", 1)[-1]})
        if parts.path == "/to-metadata":
            return self._reply(302, {}, {"Location": "http://169.254.169.254/latest/meta-data/"})
        return self._reply(404, {"error": "not found"})

    do_GET = do_POST = _handle


@pytest.fixture
def backend():
    server = Backend()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def http_tool(org, backend, name="work_orders_search", path="/api/agent/tools/work-orders/search", **fields):
    credential = Credential(organization=org, name="backend", kind=CredentialKind.BEARER)
    credential.set_secret("backend-token-123")
    credential.save()
    defaults = {
        "description": "Search the work orders.",
        "parameters": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["open", "closed"]}},
            "additionalProperties": False,
        },
        "method": "POST",
        "url_template": backend.base + path,
        "credential": credential,
        "execution": "inline",
        "timeout_seconds": 5,
    }
    defaults.update(fields)
    return HttpTool.objects.create(organization=org, name=name, **defaults)


def context_for(org) -> ToolContext:
    return ToolContext(organization_id=str(org.organization.pk), role="member", request_id="rid-http-1")


async def test_a_turn_calls_the_organizations_backend_with_its_credential(org_a, backend, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True

    def setup():
        EgressAllowedHost.objects.create(organization=org_a.organization, host="127.0.0.1")
        http_tool(org_a.organization, backend)
        make_live_agent(org_a.organization, tools=["work_orders_search"])

    await database_sync_to_async(setup)()
    ticket = await ticket_for(org_a.users["member"], org_a.organization)
    ws, _ = await open_chat("helper", f"ticket={ticket}")
    await ws.send_json_to({"type": "message", "content": 'Show me open ones: work_orders_search {"status": "open"}'})
    frames = await receive_until(ws, "turn.finished")
    await ws.disconnect()
    (finished,) = [f for f in frames if f["type"] == "tool.finished"]
    assert finished["status"] == "ok", finished
    assert json.loads(finished["result"]) == {"status": 200, "body": {"results": WORK_ORDERS}, "truncated": False}
    (request,) = backend.requests
    assert request["method"] == "POST"
    assert request["body"] == {"status": "open"}
    assert request["headers"]["authorization"] == "Bearer backend-token-123"
    assert request["headers"]["host"] == backend.base.removeprefix("http://")
    invocation = await database_sync_to_async(ToolInvocation.objects.get)()
    assert invocation.status == InvocationStatus.OK
    assert "backend-token-123" not in json.dumps(invocation.arguments) + invocation.result


def test_url_placeholders_go_to_the_path_and_the_rest_to_the_query(org_a, backend):
    EgressAllowedHost.objects.create(organization=org_a.organization, host="127.0.0.1")
    http_tool(
        org_a.organization,
        backend,
        name="asset_get",
        path="/api/assets/{asset_id}",
        method="GET",
        parameters={
            "type": "object",
            "properties": {"asset_id": {"type": "string"}, "fields": {"type": "string"}},
            "required": ["asset_id"],
        },
    )
    definition = tool_definition_get(str(org_a.organization.pk), "asset_get")
    result = tool_run(definition, {"asset_id": "pump 7/a", "fields": "all"}, context_for(org_a))
    assert result.status == InvocationStatus.OK, result.error
    (request,) = backend.requests
    assert request["path"] == "/api/assets/pump%207%2Fa"
    assert request["query"] == {"fields": ["all"]}
    assert request["headers"]["x-request-id"] == "rid-http-1"


def test_without_the_allowlist_a_loopback_backend_is_refused(org_a, org_b, backend):
    # org_b allowlists the host; that must not help org_a.
    EgressAllowedHost.objects.create(organization=org_b.organization, host="127.0.0.1")
    http_tool(org_a.organization, backend)
    definition = tool_definition_get(str(org_a.organization.pk), "work_orders_search")
    result = tool_run(definition, {"status": "open"}, context_for(org_a))
    assert result.status == InvocationStatus.ERROR
    assert result.error.startswith("Request refused:")
    assert backend.requests == []


def test_a_redirect_into_link_local_space_is_refused(org_a, backend):
    EgressAllowedHost.objects.create(organization=org_a.organization, host="127.0.0.1")
    http_tool(
        org_a.organization, backend, name="follow_me", path="/to-metadata", method="GET", parameters={"type": "object"}
    )
    definition = tool_definition_get(str(org_a.organization.pk), "follow_me")
    result = tool_run(definition, {}, context_for(org_a))
    assert result.status == InvocationStatus.ERROR
    assert "Request refused" in result.error
    assert [r["path"] for r in backend.requests] == ["/to-metadata"]


def test_a_confirmed_http_request_draft_to_a_private_address_fails_without_a_request(org_a, backend, settings):
    """The built-in http_request tool, approved by an operator, still may not
    reach loopback: the draft fails with the refusal."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    draft = Draft.objects.create(
        organization=org_a.organization,
        tool="http_request",
        arguments={"method": "GET", "url": backend.base + "/api/agent/tools/work-orders/search"},
        requested_role="member",
        expires_at=timezone.now() + timezone.timedelta(hours=1),
    )
    caller = Caller(
        organization_id=str(org_a.organization.pk), role="operator", user_id=str(org_a.users["operator"].pk)
    )
    draft_confirm(caller=caller, draft_id=draft.pk)
    draft.refresh_from_db()
    assert draft.status == DraftStatus.FAILED
    assert "Request refused" in draft.error
    assert backend.requests == []


def test_a_name_resolving_to_loopback_is_refused(org_a, backend, monkeypatch):
    import socket

    port = backend.server_address[1]

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "internal.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        raise socket.gaierror("unknown")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    http_tool(org_a.organization, backend, name="sneaky", url_template=f"http://internal.example.test:{port}/api/x")
    definition = tool_definition_get(str(org_a.organization.pk), "sneaky")
    result = tool_run(definition, {}, context_for(org_a))
    assert result.status == InvocationStatus.ERROR and "Request refused" in result.error
    assert backend.requests == []


def test_http_tool_definitions_are_validated_by_the_service(org_a, org_b, backend):
    from tools.services.catalog import http_tool_validate

    existing = http_tool(org_a.organization, backend)
    other_credential = Credential(organization=org_b.organization, name="theirs")
    other_credential.set_secret("x")
    other_credential.save()
    errors = http_tool_validate(
        organization_id=str(org_a.organization.pk),
        name="work_orders_search",
        parameters={"type": "object", "properties": {"status": {"type": "string"}}},
        url_template="https://api.example.com/assets/{asset_id}",
        headers={"Accept": "application/json", "Authorization": "Bearer oops"},
        credential_organization_id=str(other_credential.organization_id),
    )
    assert set(errors) == {"name", "url_template", "headers", "credential"}
    assert "asset_id" in errors["url_template"][0]
    assert "Authorization" in errors["headers"][0]
    # Changing the tool itself keeps its name.
    assert (
        http_tool_validate(
            organization_id=str(org_a.organization.pk),
            name="work_orders_search",
            parameters=existing.parameters,
            url_template=existing.url_template,
            tool_id=existing.pk,
        )
        == {}
    )
