"""The catalog: every tool an organization's agents may be granted (the
built-ins and its enabled HTTP tools), what a set of grants comes to, and
what a caller's role may use."""

from agenthub.errors import NotFoundError
from tools.http_tools import PLACEHOLDER, http_tool_definition
from tools.models import HttpTool
from tools.registry import ToolDefinition, builtin_tool, builtin_tools, check_schema


def tools_for_organization(organization_id: str) -> dict[str, ToolDefinition]:
    """Every tool the organization's agents may be granted: the built-ins and
    its enabled HTTP tools."""
    tools = builtin_tools()
    for row in HttpTool.objects.filter(organization_id=organization_id, enabled=True):
        tools.setdefault(row.name, http_tool_definition(row))
    return tools


def tool_definition_get(organization_id: str, name: str) -> ToolDefinition | None:
    definition = builtin_tool(name)
    if definition is not None:
        return definition
    row = HttpTool.objects.filter(organization_id=organization_id, name=name, enabled=True).first()
    return http_tool_definition(row) if row is not None else None


def tools_granted(organization_id: str, grants: list[dict] | tuple) -> dict[str, ToolDefinition]:
    """The agent's granted tools with the grants' overrides applied (grants
    of tools that no longer exist are skipped)."""
    catalog = tools_for_organization(organization_id) if grants else {}
    granted = {}
    for grant in grants:
        name = grant["tool"] if isinstance(grant, dict) else str(grant)
        definition = catalog.get(name)
        if definition is not None:
            granted[name] = definition.granted(grant if isinstance(grant, dict) else None)
    return granted


def tools_offered(granted: dict[str, ToolDefinition], role: str | None) -> dict[str, ToolDefinition]:
    """What the model is offered: the granted tools the caller's role may use."""
    return {name: d for name, d in granted.items() if d.allowed_for(role)}


SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}


def http_tool_validate(
    *,
    organization_id: str,
    name: str,
    parameters: dict,
    url_template: str,
    headers: dict | None = None,
    credential_organization_id: str | None = None,
    tool_id=None,
) -> dict:
    """Field errors of an HTTP tool definition (empty when valid); ``tool_id``
    is the tool being changed, if any."""
    errors: dict[str, list[str]] = {}
    if builtin_tool(name) is not None:
        errors["name"] = [f"'{name}' is a built-in tool; choose another name."]
    elif name and HttpTool.objects.filter(organization_id=organization_id, name=name).exclude(pk=tool_id).exists():
        errors["name"] = [f"This organization already has a tool named '{name}'."]
    try:
        check_schema(parameters)
    except ValueError as exc:
        errors["parameters"] = [str(exc)]
    if not url_template.startswith(("https://", "http://")):
        errors["url_template"] = ["The URL must start with https:// or http://."]
    elif "parameters" not in errors:
        declared = set((parameters or {}).get("properties") or {})
        missing = sorted(set(PLACEHOLDER.findall(url_template)) - declared)
        if missing:
            errors["url_template"] = [f"The URL uses {', '.join(missing)}, which the parameters do not declare."]
    secret = sorted(h for h in headers or {} if h.strip().lower() in SECRET_HEADERS)
    if secret:
        errors["headers"] = [f"Put {', '.join(secret)} in a credential (stored encrypted), not in the headers."]
    if credential_organization_id is not None and credential_organization_id != str(organization_id):
        errors["credential"] = ["This credential belongs to another organization."]
    return errors


def tool_definition_require(organization_id: str, name: str) -> ToolDefinition:
    definition = tool_definition_get(organization_id, name)
    if definition is None:
        raise NotFoundError(f"No tool '{name}' in this organization.", code="tool_not_found")
    return definition
