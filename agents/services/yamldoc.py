"""Agents as YAML documents: export, and import into any organization.

The format (``apiVersion: agenthub/v1``)::

    apiVersion: agenthub/v1
    kind: Agent
    metadata:
      name: Support assistant          # required, up to 120 characters
      slug: support                    # required, a slug unique in the organization
      description: Answers questions   # optional
      industry: customer-support       # optional: an id from /api/v1/industries, or ""
    spec:
      system_prompt: |                 # optional, up to 20000 characters
        You are ...
      model: gpt-4o-mini               # required, one of /api/v1/config "models"
      fallback_models: [gpt-4o]        # optional, tried in order when the model fails
      temperature: 0.7                 # optional, 0 to 2
      max_output_tokens: 1024          # optional, 1 to 32768
      max_tool_rounds: 5               # optional, 0 to 20
      response_cache: off              # optional: off, deterministic (temperature 0) or always
      tools:                           # optional: tool grants, each a name from /api/v1/tools...
        - calculator
        - tool: send_email             # ...or a mapping that overrides the tool's own rules
          min_role: operator           # a role, or null for the tool's own minimum role
          requires_approval: true      # true/false, or null for the tool's own rule
    version:                           # informational, ignored on import
      number: 3
      published_at: "2025-01-31T12:00:00+00:00"
      note: Shorter answers

``version`` is written when the exported definition is a published version:
either a version asked for explicitly, or the working definition when it has
no unpublished changes.

Import reads the document with ``yaml.safe_load`` (no aliases, no custom
tags), refuses anything that is not a mapping, unknown keys, a wrong
``apiVersion`` or ``kind`` and wrongly typed values, and reports every
problem by field path (``spec.temperature``, ``metadata.slug``, ``spec.tools[2].min_role``) in a
``validation_error``; a tool that is not in the importing organization's
catalog is an ``unknown_tools`` error keyed by its ``spec.tools[<i>]``.  The
import creates a draft agent with the document's tool grants, or with
``update=True`` changes the agent that has the same slug (keys the document
leaves out take their defaults and no ``tools`` means no grants, so the agent
ends up exactly as described); it never publishes.  Documents are limited to ``API_MAX_BODY_BYTES``.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from django.conf import settings
from django.db import transaction

from accounts.models import Organization, User
from accounts.roles import Role
from agenthub.errors import ApplicationError
from agents import selectors
from agents.definition import SPEC_FIELDS
from agents.models import Agent, AgentVersion
from agents.services.agents import agent_create, agent_update, field_defaults
from agents.services.grants import GRANTS_MAX, agent_tools_set
from tools.services.catalog import tools_for_organization

API_VERSION = "agenthub/v1"
KIND = "Agent"
ROOT = "non_field_errors"

# Where each agent field lives in the document.
METADATA_FIELDS = ("name", "slug", "description", "industry")
VERSION_FIELDS = ("number", "published_at", "note")
GRANT_FIELDS = ("tool", "min_role", "requires_approval")
TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "version")
REQUIRED = {"metadata": ("name", "slug"), "spec": ("model",)}
FIELD_PATHS = {
    **{name: f"metadata.{name}" for name in METADATA_FIELDS},
    **{name: f"spec.{name}" for name in SPEC_FIELDS},
}

_STRING = (str,)
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": (_STRING, "a string"),
    "slug": (_STRING, "a string"),
    "description": (_STRING, "a string"),
    "industry": (_STRING, "a string"),
    "system_prompt": (_STRING, "a string"),
    "model": (_STRING, "a string"),
    "fallback_models": ((list,), "a list of model names"),
    "temperature": ((int, float), "a number"),
    "max_output_tokens": ((int,), "an integer"),
    "max_tool_rounds": ((int,), "an integer"),
    "response_cache": (_STRING, "off, deterministic or always"),
    "tools": ((list,), "a list of tool grants"),
}


@dataclass(frozen=True)
class ImportResult:
    agent: Agent
    created: bool


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases, so a small document cannot expand
    into a huge one ("billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in agent documents", event.start_mark
            )
        return super().compose_node(parent, index)


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _invalid(fields: dict[str, list[str]], message: str | None = None) -> ApplicationError:
    first = next(iter(fields))
    prefix = "" if first == ROOT else f"{first}: "
    return ApplicationError(
        message or f"{prefix}{fields[first][0]}",
        code="validation_error",
        details={"fields": fields},
    )


# --- export ---------------------------------------------------------------------------------


def agent_export_data(*, agent: Agent, version: AgentVersion | None = None) -> dict[str, Any]:
    """The document for ``agent``: its working definition, or with
    ``version`` that version's snapshot."""
    source: Agent | AgentVersion = version if version is not None else agent
    if version is None and agent.live_version is not None and not selectors.agent_has_unpublished_changes(agent):
        version = agent.live_version
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": source.name,
            "slug": agent.slug,
            "description": agent.description,
            "industry": agent.industry,
        },
        "spec": {
            "system_prompt": source.system_prompt,
            "model": source.model,
            "fallback_models": list(source.fallback_models),
            "temperature": source.temperature,
            "max_output_tokens": source.max_output_tokens,
            "max_tool_rounds": source.max_tool_rounds,
            "response_cache": source.response_cache,
            "tools": [
                _grant_document(grant)
                for grant in (version.tools if version is not None else selectors.agent_tool_grants(agent))
            ],
        },
    }
    if version is not None:
        document["version"] = {
            "number": version.number,
            "published_at": version.published_at.isoformat(),
            "note": version.note,
        }
    return document


def _grant_document(grant: Mapping[str, Any] | str) -> str | dict[str, Any]:
    """A grant as the document writes it: the tool's name when it keeps the
    tool's own rules, else a mapping with the overrides."""
    if isinstance(grant, str):
        return grant
    min_role = grant.get("min_role") or None
    requires_approval = grant.get("requires_approval")
    if min_role is None and requires_approval is None:
        return str(grant["tool"])
    return {"tool": str(grant["tool"]), "min_role": min_role, "requires_approval": requires_approval}


def agent_export_yaml(*, agent: Agent, version: AgentVersion | None = None) -> str:
    return yaml.dump(
        agent_export_data(agent=agent, version=version),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


# --- import ---------------------------------------------------------------------------------


def agent_yaml_parse(text: str | bytes) -> dict[str, Any]:
    """The agent fields of a YAML document, checked for structure and types
    (values are checked by the services), with ``tools`` as a list of grants
    ``{tool, min_role, requires_approval}`` when the document has any.  Raises ``validation_error`` with
    field paths, or ``invalid_yaml`` for a document that is not YAML."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid({ROOT: ["The document is not UTF-8 text."]}) from None
    limit = settings.API_MAX_BODY_BYTES
    if len(text.encode("utf-8", errors="surrogatepass")) > limit:
        raise ApplicationError(
            f"The document is larger than {limit} bytes.",
            code="payload_too_large",
            status_code=413,
            details={"limit_bytes": limit},
        )
    if not text.strip():
        raise _invalid({ROOT: ["The document is empty."]})
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader without aliases)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        details: dict[str, Any] = {"fields": {ROOT: [f"{where}{problem}"]}}
        if mark:
            details.update(line=mark.line + 1, column=mark.column + 1)
        raise ApplicationError(
            f"The document is not valid YAML: {where}{problem}.", code="invalid_yaml", details=details
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ApplicationError(
            "The document is not valid YAML.",
            code="invalid_yaml",
            details={"fields": {ROOT: [str(exc)[:200] or "invalid YAML"]}},
        ) from None

    errors: dict[str, list[str]] = {}
    if not isinstance(document, Mapping):
        raise _invalid({ROOT: [f"The document must be a mapping with the keys {', '.join(TOP_LEVEL)}."]})
    for key in document:
        if key not in TOP_LEVEL:
            errors[str(key)] = [f"Unknown key. Allowed keys: {', '.join(TOP_LEVEL)}."]
    if document.get("apiVersion") != API_VERSION:
        errors["apiVersion"] = [f"Must be '{API_VERSION}'."]
    if document.get("kind") != KIND:
        errors["kind"] = [f"Must be '{KIND}'."]

    fields: dict[str, Any] = {}
    for section, allowed in (("metadata", METADATA_FIELDS), ("spec", SPEC_FIELDS), ("version", VERSION_FIELDS)):
        body = document.get(section)
        if body is None:
            if section != "version":
                errors[section] = ["This section is required."]
            continue
        if not isinstance(body, Mapping):
            errors[section] = ["Must be a mapping."]
            continue
        for key in body:
            if key not in allowed:
                errors[f"{section}.{key}"] = [f"Unknown key. Allowed keys: {', '.join(allowed)}."]
        for required in REQUIRED.get(section, ()):
            if body.get(required) in (None, ""):
                errors[f"{section}.{required}"] = ["This field is required."]
        if section == "version":
            _check_version(body, errors)
            continue
        for key in allowed:
            if key not in body or body[key] is None:
                continue
            value = body[key]
            if key == "response_cache" and value is False:
                value = "off"  # YAML 1.1 reads a bare off as false
            types, description = _TYPES[key]
            if isinstance(value, bool) or not isinstance(value, types):
                errors[f"{section}.{key}"] = [f"Must be {description}."]
                continue
            fields[key] = value

    if "fallback_models" in fields and not all(isinstance(m, str) for m in fields["fallback_models"]):
        errors["spec.fallback_models"] = ["Must be a list of model names."]
    if "tools" in fields:
        fields["tools"] = _parse_grants(fields["tools"], errors)
    if "temperature" in fields:
        fields["temperature"] = float(fields["temperature"])
    if errors:
        raise _invalid(errors)
    return fields


def _parse_grants(items: list, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """``spec.tools`` as grants ``{tool, min_role, requires_approval}``; each
    item is a tool name or a mapping.  Problems are added to ``errors`` by
    path (``spec.tools[1].min_role``).  Whether the tools exist is checked
    on import, against the importing organization's catalog."""
    if len(items) > GRANTS_MAX:
        errors["spec.tools"] = [f"An agent can be granted at most {GRANTS_MAX} tools."]
        return []
    grants: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        path = f"spec.tools[{index}]"
        if isinstance(item, str):
            item = {"tool": item}
        elif not isinstance(item, Mapping):
            errors[path] = ["Must be a tool name or a mapping with the keys tool, min_role, requires_approval."]
            continue
        problems = len(errors)
        for key in item:
            if key not in GRANT_FIELDS:
                errors[f"{path}.{key}"] = [f"Unknown key. Allowed keys: {', '.join(GRANT_FIELDS)}."]
        tool = item.get("tool")
        if not isinstance(tool, str) or not tool.strip():
            errors[f"{path}.tool"] = ["Must be the name of a tool from /api/v1/tools."]
        min_role = item.get("min_role")
        if min_role is not None and (not isinstance(min_role, str) or (min_role and min_role not in Role.values)):
            errors[f"{path}.min_role"] = [
                f"Must be one of {', '.join(Role.values)}, or null for the tool's own minimum role."
            ]
        requires_approval = item.get("requires_approval")
        if requires_approval is not None and not isinstance(requires_approval, bool):
            errors[f"{path}.requires_approval"] = ["Must be true, false, or null for the tool's own rule."]
        if len(errors) > problems:
            continue
        if tool in first_index:
            errors[path] = [f"'{tool}' is already granted by spec.tools[{first_index[tool]}]; grant each tool once."]
            continue
        first_index[tool] = index
        grants.append({"tool": tool, "min_role": min_role or "", "requires_approval": requires_approval})
    return grants


def _check_grants_known(*, organization: Organization, grants: list[dict[str, Any]]) -> None:
    """Refuses grants of tools the organization's catalog does not have
    (built-ins and its enabled HTTP tools), naming each by path."""
    catalog = tools_for_organization(str(organization.pk)) if grants else {}
    # A parsed list has no gaps: grants[i] is spec.tools[i].
    unknown = {index: grant["tool"] for index, grant in enumerate(grants) if grant["tool"] not in catalog}
    if not unknown:
        return
    fields = {
        f"spec.tools[{index}]": [
            f"Unknown tool '{name}'. Choose a tool from /api/v1/tools (disabled HTTP tools cannot be granted)."
        ]
        for index, name in unknown.items()
    }
    names = list(unknown.values())
    raise ApplicationError(
        f"spec.tools: Unknown tools: {', '.join(names)}. Choose tools from /api/v1/tools.",
        code="unknown_tools",
        details={"fields": fields, "tools": names},
    )


def _check_version(body: Mapping, errors: dict[str, list[str]]) -> None:
    number = body.get("number")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
        errors["version.number"] = ["Must be a positive integer."]
    published_at = body.get("published_at")
    if published_at is not None and not isinstance(published_at, str | datetime.date):
        errors["version.published_at"] = ["Must be a timestamp."]
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        errors["version.note"] = ["Must be a string."]


def _with_paths(exc: ApplicationError) -> ApplicationError:
    """A service error keyed by agent field, re-keyed by document path."""
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if not fields:
        return exc
    mapped = {FIELD_PATHS.get(name, name): messages for name, messages in fields.items()}
    first = next(iter(mapped))
    return ApplicationError(
        f"{first}: {mapped[first][0]}",
        code=exc.code,
        status_code=exc.status_code,
        details={**exc.details, "fields": mapped},
    )


@transaction.atomic
def agent_import_yaml(
    *, organization: Organization, user: User | None, text: str | bytes, update: bool = False
) -> ImportResult:
    """Creates a draft agent from a YAML document, or, with ``update``,
    changes the organization's agent that has the document's slug (creating
    it when there is none).  Without ``update`` an existing slug is a 409
    ``slug_taken``."""
    fields = agent_yaml_parse(text)
    grants = fields.pop("tools", [])
    _check_grants_known(organization=organization, grants=grants)
    existing = Agent.objects.for_organization(organization).filter(slug=fields["slug"]).first()
    try:
        if existing is not None and update:
            data = {
                "description": "",
                "industry": "",
                "system_prompt": "",
                "fallback_models": [],
                "response_cache": "off",
                **field_defaults(),
                **fields,
            }
            agent = agent_update(agent=existing, user=user, data=data)
            agent_tools_set(agent=agent, grants=grants, user=user)
            return ImportResult(agent=agent, created=False)
        if existing is not None:
            raise ApplicationError(
                f"An agent with the slug '{fields['slug']}' already exists; import with update to change it.",
                code="slug_taken",
                status_code=409,
                details={"fields": {"slug": ["An agent with this slug already exists in this organization."]}},
            )
        agent = agent_create(organization=organization, user=user, **fields)
        if grants:
            agent_tools_set(agent=agent, grants=grants, user=user)
        return ImportResult(agent=agent, created=True)
    except ApplicationError as exc:
        raise _with_paths(exc) from exc
