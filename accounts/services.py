"""Writes for organizations, memberships, API keys and websocket tickets.

Keyword-only, atomic, and the rules live here (not in views or the admin):
who may grant which role, the last owner, key roles capped by the creator's.
"""

import secrets
import string

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from accounts.authentication import KEY_PREFIX, hash_api_key
from accounts.models import ApiKey, Membership, Organization, User
from accounts.roles import ROLE_RANK, Role, role_at_least
from agenthub.errors import ApplicationError, ConflictError, ForbiddenError, NotFoundError

_ALPHABET = string.ascii_lowercase + string.digits


# --- organizations ---------------------------------------------------------------


@transaction.atomic
def organization_create(*, name: str, owner: User, slug: str | None = None) -> Organization:
    base = slugify(slug or name)[:50] or "org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    org = Organization.objects.create(name=name, slug=candidate)
    Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    return org


def organization_update(*, organization: Organization, name: str) -> Organization:
    organization.name = name
    organization.save(update_fields=["name", "updated_at"])
    return organization


# --- memberships -------------------------------------------------------------------


def _check_can_manage(*, actor_role: str, target_role: str, new_role: str | None = None) -> None:
    if not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can manage members.")
    for role in (target_role, new_role):
        if role == Role.OWNER and actor_role != Role.OWNER:
            raise ForbiddenError("Only an owner can grant, change or remove the owner role.")


def _owner_count_locked(organization: Organization) -> int:
    owners = Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER)
    return len(list(owners.values_list("pk", flat=True)))


@transaction.atomic
def membership_add(*, organization: Organization, actor_role: str, user_lookup: str, role: str) -> Membership:
    _check_can_manage(actor_role=actor_role, target_role=role)
    user = (
        User.objects.filter(Q(username__iexact=user_lookup) | Q(email__iexact=user_lookup), is_active=True)
        .order_by("date_joined")
        .first()
    )
    if user is None:
        raise ApplicationError(
            f"No active user has the username or email '{user_lookup}'.",
            code="user_not_found",
            details={"fields": {"user": ["No active user has this username or email."]}},
        )
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise ConflictError(f"{user.username} is already a member of this organization.", code="already_member")
    return Membership.objects.create(organization=organization, user=user, role=role)


@transaction.atomic
def membership_change_role(*, membership: Membership, actor_role: str, role: str) -> Membership:
    _check_can_manage(actor_role=actor_role, target_role=membership.role, new_role=role)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count_locked(membership.organization) <= 1:
        raise ConflictError("The last owner cannot be demoted; make another member owner first.", code="last_owner")
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor_role: str) -> None:
    _check_can_manage(actor_role=actor_role, target_role=membership.role)
    if membership.role == Role.OWNER and _owner_count_locked(membership.organization) <= 1:
        raise ConflictError("The last owner cannot be removed; make another member owner first.", code="last_owner")
    membership.delete()


# --- API keys ------------------------------------------------------------------------


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    name: str,
    role: str = Role.MEMBER,
    actor_role: str,
    created_by: User | None = None,
    expires_at=None,
) -> tuple[ApiKey, str]:
    """Creates a key and returns it with its secret, which is never stored
    and cannot be shown again."""
    if ROLE_RANK[role] > ROLE_RANK.get(actor_role, 0):
        raise ForbiddenError(f"You cannot create a key with the role '{role}', stronger than your own.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError(
            "expires_at must be in the future.",
            code="validation_error",
            details={"fields": {"expires_at": ["Must be in the future."]}},
        )
    prefix = _random(8)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = _random(8)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        role=role,
        prefix=prefix,
        hashed_key=hash_api_key(raw),
        created_by=created_by,
        expires_at=expires_at,
    )
    return key, raw


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Idempotent: revoking a revoked key keeps its first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


# --- websocket tickets ------------------------------------------------------------------

_TICKET_KEY = "ws-ticket:{}"


def ws_ticket_issue(
    *, organization: Organization, user: User | None = None, api_key: ApiKey | None = None, extra: dict | None = None
) -> str:
    """A short-lived, single-use ticket a browser puts in the websocket URL
    (browsers cannot set headers on websockets).  It stands for the user or
    the API key that asked for it; ``extra`` travels with it (e.g. which
    surface opened the chat)."""
    if (user is None) == (api_key is None):
        raise ValueError("a ticket is issued for a user or for an API key")
    ticket = secrets.token_urlsafe(32)
    payload = {
        "organization_id": str(organization.pk),
        "user_id": str(user.pk) if user is not None else None,
        "api_key_id": str(api_key.pk) if api_key is not None else None,
        "extra": extra or {},
    }
    cache.set(_TICKET_KEY.format(ticket), payload, timeout=settings.WS_TICKET_TTL_SECONDS)
    return ticket


def ws_ticket_redeem(*, ticket: str) -> dict:
    """The ticket's payload, exactly once.  ``delete`` is atomic in Redis, so
    of two racing redemptions only one succeeds."""
    if not ticket or len(ticket) > 128:
        raise NotFoundError("Unknown or expired ticket.", code="invalid_ticket")
    key = _TICKET_KEY.format(ticket)
    payload = cache.get(key)
    if payload is None or not cache.delete(key):
        raise NotFoundError("Unknown or expired ticket.", code="invalid_ticket")
    return payload
