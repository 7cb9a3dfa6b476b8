"""Operator-defined HTTP tools, and outbound HTTP for tools in general,
always through the SSRF-safe client in :mod:`integrations.egress`."""

import contextlib
import json
import re
from functools import partial
from urllib.parse import quote

import httpx

from integrations.egress import EgressRefused, http_fetch
from integrations.models import Credential, EgressAllowedHost
from tools.models import HttpMethod, HttpTool
from tools.registry import ToolContext, ToolDefinition, ToolFailed

PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")
BODY_METHODS = {HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH}


def organization_allowed_hosts(organization_id: str) -> list[str]:
    return list(EgressAllowedHost.objects.filter(organization_id=organization_id).values_list("host", flat=True))


def fetch_for_organization(
    *, organization_id: str, method: str, url: str, headers: dict, body=None, timeout: float, max_bytes: int = 64_000
) -> dict:
    """One outbound request under the organization's egress allowlist;
    refusals and network failures become :class:`ToolFailed`."""
    try:
        result = http_fetch(
            method=method,
            url=url,
            headers=headers,
            body=body,
            timeout=timeout,
            max_bytes=max_bytes,
            allow_hosts=organization_allowed_hosts(organization_id),
        )
    except EgressRefused as exc:
        raise ToolFailed(f"Request refused: {exc.message}") from None
    except httpx.TimeoutException:
        raise ToolFailed(f"The server did not answer within {timeout:g} s.") from None
    except httpx.HTTPError as exc:
        raise ToolFailed(f"The request failed: {type(exc).__name__}.") from None
    body_out: object = result.text
    if "json" in result.headers.get("content-type", "") and not result.truncated:
        with contextlib.suppress(ValueError):
            body_out = json.loads(result.text)
    return {"status": result.status, "body": body_out, "truncated": result.truncated}


def url_for(template: str, arguments: dict) -> tuple[str, dict]:
    """Fills ``{name}`` placeholders (URL-encoded) and returns the URL with
    the arguments that were not used in it."""
    used: set[str] = set()

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in arguments:
            raise ToolFailed(f"The argument '{name}' is needed for the URL.")
        used.add(name)
        return quote(str(arguments[name]), safe="")

    return PLACEHOLDER.sub(fill, template), {k: v for k, v in arguments.items() if k not in used}


def _call_http_tool(snapshot: dict, arguments: dict, context: ToolContext) -> dict:
    url, rest = url_for(snapshot["url_template"], arguments)
    headers = dict(snapshot["headers"] or {})
    if snapshot["credential_id"]:
        credential = Credential.objects.filter(
            pk=snapshot["credential_id"], organization_id=context.organization_id
        ).first()
        if credential is None:
            raise ToolFailed("The tool's credential no longer exists; an operator must fix the tool.")
        headers.update(credential.auth_headers())
    if context.idempotency_key:
        headers.setdefault("Idempotency-Key", context.idempotency_key)
    if context.request_id:
        headers.setdefault("X-Request-ID", context.request_id)
    method = snapshot["method"]
    body = None
    if method in BODY_METHODS:
        body = rest
    elif rest:
        query = "&".join(f"{quote(str(k), safe='')}={quote(_scalar(v), safe='')}" for k, v in rest.items())
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    return fetch_for_organization(
        organization_id=context.organization_id,
        method=method,
        url=url,
        headers=headers,
        body=body,
        timeout=snapshot["timeout_seconds"],
        max_bytes=snapshot["max_result_chars"],
    )


def _scalar(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def http_tool_definition(row: HttpTool) -> ToolDefinition:
    snapshot = {
        "url_template": row.url_template,
        "headers": row.headers,
        "credential_id": str(row.credential_id) if row.credential_id else None,
        "method": row.method,
        "timeout_seconds": row.timeout_seconds,
        "max_result_chars": row.max_result_chars,
    }
    return ToolDefinition(
        name=row.name,
        description=row.description,
        parameters=row.parameters or {"type": "object", "properties": {}},
        min_role=row.min_role,
        requires_approval=row.requires_approval,
        approver_role=row.approver_role,
        allow_self_approval=row.allow_self_approval,
        execution=row.execution,
        timeout_seconds=float(row.timeout_seconds),
        max_result_chars=row.max_result_chars,
        source="http",
        handler=partial(_call_http_tool, snapshot),
        http_tool_id=str(row.pk),
    )
