"""Create, edit, delete and change the status of agents.

The rules an agent definition obeys live here, so the API, the admin, the
YAML import and the demo seeder all apply the same ones:

- ``model`` and every ``fallback_models`` entry are available models
  (:func:`agents.selectors.available_models`); fallbacks are distinct and
  differ from ``model``;
- ``industry`` is blank or an id of the catalog (:mod:`agents.catalog`);
- the slug is unique in the organization (a clash is a 409 ``slug_taken``);
- an agent becomes ``active`` only once it has a live version.

Validation errors are ``validation_error`` with ``details.fields`` keyed by
field name, like the API's serializer errors.
"""

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Organization, User
from accounts.roles import Role, role_at_least
from agenthub.errors import ApplicationError, ConflictError, ForbiddenError, NotFoundError
from agents import catalog, selectors
from agents.definition import EDITABLE_FIELDS, TUNING_FIELDS
from agents.models import Agent, AgentStatus

# TextField max_length is not enforced by the model; these are.
TEXT_LIMITS = {"description": 2000, "system_prompt": 20000}
MAX_FALLBACK_MODELS = 5
BULK_MAX_IDS = 100


class BulkAction:
    ENABLE = "enable"
    DISABLE = "disable"
    DELETE = "delete"
    CHOICES = (ENABLE, DISABLE, DELETE)


@dataclass(frozen=True)
class BulkResult:
    action: str
    ids: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ids)


def field_defaults() -> dict[str, Any]:
    """Defaults of the tunable fields, as the model declares them."""
    return {name: Agent._meta.get_field(name).get_default() for name in TUNING_FIELDS}


def validation_error(fields: Mapping[str, list[str]], *, code: str = "validation_error") -> ApplicationError:
    first_field, messages = next(iter(fields.items()))
    return ApplicationError(
        f"{first_field}: {messages[0]}",
        code=code,
        details={"fields": {name: list(msgs) for name, msgs in fields.items()}},
    )


def _slug_taken(slug: str) -> ConflictError:
    return ConflictError(
        f"Another agent in this organization already has the slug '{slug}'. Choose another slug.",
        code="slug_taken",
        details={"fields": {"slug": ["An agent with this slug already exists in this organization."]}},
    )


def _check_values(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Rules the model fields do not express; ``values`` are already typed."""
    errors: dict[str, list[str]] = {}
    models = selectors.available_model_names()
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            errors.setdefault(name, []).append("Null characters are not allowed.")
    for name, limit in TEXT_LIMITS.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            errors.setdefault(name, []).append(f"Ensure this field has no more than {limit} characters.")
    if "name" in values and not str(values["name"] or "").strip():
        errors.setdefault("name", []).append("This field may not be blank.")
    if "model" in values and values["model"] not in models:
        errors.setdefault("model", []).append(
            f"'{values['model']}' is not an available model. Choose one of: {', '.join(models)}."
        )
    if "industry" in values and values["industry"] and catalog.industry_get(values["industry"]) is None:
        errors.setdefault("industry", []).append(
            f"'{values['industry']}' is not an industry. Choose one of: {', '.join(catalog.industry_ids())}, or leave it blank."
        )
    if (
        "temperature" in values
        and isinstance(values["temperature"], float)
        and not math.isfinite(values["temperature"])
    ):
        errors.setdefault("temperature", []).append("Must be a finite number.")
    if "fallback_models" in values:
        fallbacks = values["fallback_models"]
        if not isinstance(fallbacks, list) or not all(isinstance(m, str) for m in fallbacks):
            errors.setdefault("fallback_models", []).append("Must be a list of model names.")
        else:
            unknown = [m for m in fallbacks if m not in models]
            if unknown:
                errors.setdefault("fallback_models", []).append(
                    f"Not available: {', '.join(unknown)}. Choose from: {', '.join(models)}."
                )
            if len(set(fallbacks)) != len(fallbacks):
                errors.setdefault("fallback_models", []).append("List each fallback model once.")
            if len(fallbacks) > MAX_FALLBACK_MODELS:
                errors.setdefault("fallback_models", []).append(
                    f"Ensure this list has no more than {MAX_FALLBACK_MODELS} models."
                )
    return errors


def agent_validate(*, agent: Agent, changed: Iterable[str]) -> None:
    """Validates the ``changed`` fields of an unsaved ``agent`` (the others are
    assumed valid), coercing them to their field types.  Raises
    ``validation_error`` or ``slug_taken``."""
    changed = set(changed)
    errors: dict[str, list[str]] = {}
    try:
        agent.clean_fields(exclude=[f.name for f in Agent._meta.concrete_fields if f.name not in changed])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    values = {name: getattr(agent, name) for name in changed if name not in errors}
    if "model" in changed or "fallback_models" in changed:
        values.setdefault("model", agent.model)
        if "fallback_models" not in errors:
            values.setdefault("fallback_models", agent.fallback_models)
    for name, messages in _check_values(values).items():
        errors.setdefault(name, []).extend(messages)
    fallbacks = agent.fallback_models if isinstance(agent.fallback_models, list) else []
    if "fallback_models" not in errors and "model" not in errors and agent.model in fallbacks:
        errors.setdefault("fallback_models", []).append("The agent's own model cannot be one of its fallbacks.")
    if errors:
        ordered = {name: errors[name] for name in EDITABLE_FIELDS if name in errors}
        ordered.update({k: v for k, v in errors.items() if k not in ordered})
        raise validation_error(ordered)
    if "slug" in changed and (
        Agent.objects.for_organization(agent.organization_id).filter(slug=agent.slug).exclude(pk=agent.pk).exists()
    ):
        raise _slug_taken(agent.slug)


def agent_lock(agent: Agent) -> Agent:
    """The agent's row, locked until the end of the transaction."""
    locked = Agent.objects.select_for_update().filter(pk=agent.pk).first()
    if locked is None:  # deleted meanwhile
        raise NotFoundError("This agent no longer exists.", code="agent_not_found")
    return locked


def _save(agent: Agent, *, update_fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            agent.save(update_fields=update_fields)
    except IntegrityError as exc:  # a concurrent write took the slug
        raise _slug_taken(agent.slug) from exc


def _unique_slug(organization: Organization, base: str) -> str:
    base = slugify(base)[:56].strip("-") or "agent"
    taken = set(
        Agent.objects.for_organization(organization).filter(slug__startswith=base).values_list("slug", flat=True)
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


@transaction.atomic
def agent_create(
    *,
    organization: Organization,
    user: User | None,
    name: str,
    slug: str | None = None,
    description: str = "",
    industry: str = "",
    system_prompt: str = "",
    model: str | None = None,
    fallback_models: list[str] | None = None,
    temperature: float | None = None,
    max_output_tokens: int | None = None,
    max_tool_rounds: int | None = None,
    response_cache: str = "off",
) -> Agent:
    """A new draft agent.  Without a slug, one is derived from the name and
    made unique; a given slug that is taken is a 409 ``slug_taken``."""
    from django.conf import settings

    defaults = field_defaults()
    agent = Agent(
        organization=organization,
        name=name,
        slug=slug if slug else _unique_slug(organization, name),
        description=description,
        industry=industry,
        system_prompt=system_prompt,
        model=model or settings.AGENTHUB_DEFAULT_MODEL,
        fallback_models=list(fallback_models or []),
        temperature=defaults["temperature"] if temperature is None else temperature,
        max_output_tokens=defaults["max_output_tokens"] if max_output_tokens is None else max_output_tokens,
        max_tool_rounds=defaults["max_tool_rounds"] if max_tool_rounds is None else max_tool_rounds,
        response_cache=response_cache,
        status=AgentStatus.DRAFT,
        created_by=user,
        updated_by=user,
    )
    agent_validate(agent=agent, changed=EDITABLE_FIELDS)
    _save(agent)
    return agent


@transaction.atomic
def agent_update(*, agent: Agent, user: User | None, data: Mapping[str, Any]) -> Agent:
    """Changes the fields in ``data`` (any of :data:`EDITABLE_FIELDS`) and
    records who did.  Only the changed columns are written, so a concurrent
    publish or status change is never overwritten.  The live version is not
    touched: publish to make the changes live."""
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise validation_error({name: ["This field cannot be changed here."] for name in unknown})
    changed = [name for name in EDITABLE_FIELDS if name in data and data[name] != getattr(agent, name)]
    if not changed:
        return agent
    for name in changed:
        value = data[name]
        setattr(agent, name, list(value) if name == "fallback_models" and isinstance(value, list | tuple) else value)
    agent_validate(agent=agent, changed=changed)
    agent.updated_by = user
    _save(agent, update_fields=[*changed, "updated_by", "updated_at"])
    return agent


@transaction.atomic
def agent_delete(*, agent: Agent) -> None:
    """Deletes the agent with its versions and conversations.  Conversations
    go first: they protect the versions they ran against.  (They live in the
    chat app above this one: reached through the reverse relation, not an
    import.)"""
    conversations = Agent._meta.get_field("conversations").related_model
    conversations.objects.filter(Q(agent=agent) | Q(version__agent=agent)).delete()
    agent.delete()


@transaction.atomic
def agent_set_status(*, agent: Agent, user: User | None, status: str) -> Agent:
    """``active`` needs a live version: publish before activating."""
    if status not in AgentStatus.values:
        raise validation_error(
            {"status": [f"'{status}' is not a status. Choose one of: {', '.join(AgentStatus.values)}."]}
        )
    locked = agent_lock(agent)
    if status == AgentStatus.ACTIVE and locked.live_version_id is None:
        raise ConflictError(
            f"{agent.name} has no published version: publish before activating.",
            code="agent_not_published",
        )
    if locked.status != status:
        locked.status = status
        locked.updated_by = user
        locked.save(update_fields=["status", "updated_by", "updated_at"])
    agent.status, agent.updated_by, agent.updated_at = locked.status, locked.updated_by, locked.updated_at
    return agent


@transaction.atomic
def agent_bulk(
    *,
    organization: Organization,
    user: User | None,
    actor_role: str,
    action: str,
    ids: Iterable[uuid.UUID | str],
) -> BulkResult:
    """Enables, disables or deletes several agents of ``organization``, all
    or nothing: ids that are not agents of the organization are reported
    (404 ``agents_not_found``, ``details.ids``) and nothing changes; enabling
    an unpublished agent is a 409 ``agent_not_published`` listing them.
    Deleting needs the admin role."""
    if action not in BulkAction.CHOICES:
        raise validation_error(
            {"action": [f"'{action}' is not a bulk action. Choose one of: {', '.join(BulkAction.CHOICES)}."]}
        )
    if action == BulkAction.DELETE and not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can delete agents.")
    requested: list[str] = []
    for raw in ids:
        value = str(raw)
        if value not in requested:
            requested.append(value)
    if not requested:
        raise validation_error({"ids": ["Give at least one agent id."]})
    if len(requested) > BULK_MAX_IDS:
        raise validation_error({"ids": [f"Give at most {BULK_MAX_IDS} ids per request."]})
    parsed: dict[str, uuid.UUID] = {}
    for value in requested:
        try:
            parsed[value] = uuid.UUID(value)
        except ValueError:
            continue
    agents = {
        str(a.pk): a
        for a in Agent.objects.for_organization(organization)
        .select_for_update()
        .filter(pk__in=list(parsed.values()))
        .order_by("pk")
    }
    found = {value for value, pk in parsed.items() if str(pk) in agents}
    unknown = [value for value in requested if value not in found]
    if unknown:
        raise NotFoundError(
            f"{len(unknown)} of the ids are not agents of your organization; nothing was changed.",
            code="agents_not_found",
            details={"ids": unknown},
        )
    targets = [agents[str(parsed[value])] for value in requested]
    if action == BulkAction.ENABLE:
        unpublished = [str(a.pk) for a in targets if a.live_version_id is None]
        if unpublished:
            raise ConflictError(
                f"{len(unpublished)} of the agents have no published version: publish before activating; "
                "nothing was changed.",
                code="agent_not_published",
                details={"ids": unpublished},
            )
    done = [str(a.pk) for a in targets]
    if action == BulkAction.DELETE:
        for agent in targets:
            agent_delete(agent=agent)
    else:
        status = AgentStatus.ACTIVE if action == BulkAction.ENABLE else AgentStatus.DISABLED
        Agent.objects.filter(pk__in=[a.pk for a in targets]).exclude(status=status).update(
            status=status, updated_by=user, updated_at=timezone.now()
        )
    return BulkResult(action=action, ids=done)
