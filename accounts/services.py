"""Writes for organizations, memberships, API keys and websocket tickets.

Keyword-only, atomic, and the rules live here (not in views or the admin):
who may grant which role, the last owner, key roles capped by the creator's.
"""

import hashlib
import secrets
import string
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.authentication import KEY_PREFIX, api_keys_forget, hash_api_key
from accounts.models import ApiKey, Invitation, InvitationStatus, Membership, Organization, User
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
    """Owners and admins manage members; only owners touch owners and admins
    (remove, demote, promote to owner), so an admin cannot push out another."""
    if not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can manage members.")
    if new_role == Role.OWNER and actor_role != Role.OWNER:
        raise ForbiddenError("Only an owner can grant the owner role.")
    if role_at_least(target_role, Role.ADMIN) and actor_role != Role.OWNER and new_role is not None:
        raise ForbiddenError("Only an owner can change the role of an owner or an admin.")


def _owner_count_locked(organization: Organization) -> int:
    owners = Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER)
    return len(list(owners.values_list("pk", flat=True)))


@transaction.atomic
def membership_change_role(*, membership: Membership, actor_role: str, role: str) -> Membership:
    _check_can_manage(actor_role=actor_role, target_role=membership.role, new_role=role)
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count_locked(membership.organization) <= 1:
        raise ConflictError("The last owner cannot be demoted; make another member owner first.", code="last_owner")
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    return membership


@transaction.atomic
def membership_remove(
    *, membership: Membership, actor_role: str, actor: User | None = None, confirm_self: bool = False
) -> None:
    """Removes a member. Only owners remove owners and admins; nobody removes
    the last owner; removing yourself needs ``confirm_self``."""
    if actor is not None and membership.user_id == actor.pk:
        if not confirm_self:
            raise ApplicationError(
                "This is your own membership: you would lose access to this organization. "
                "To leave, repeat the request with ?confirm_self=true.",
                code="confirm_self_required",
            )
    else:
        _check_can_manage(actor_role=actor_role, target_role=membership.role)
        if role_at_least(membership.role, Role.ADMIN) and actor_role != Role.OWNER:
            raise ForbiddenError("Only an owner can remove an owner or an admin.")
    if membership.role == Role.OWNER and _owner_count_locked(membership.organization) <= 1:
        raise ConflictError("The last owner cannot be removed; make another member owner first.", code="last_owner")
    membership.delete()


# --- invitations ------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_link(token: str) -> str:
    """The one-time link (its host from configuration, never from a request)."""
    return f"{settings.AGENTHUB_PUBLIC_URL.rstrip('/')}/invitations/{token}/"


def _send_invitation(*, invitation: Invitation, token: str) -> None:
    inviter = invitation.invited_by.get_full_name() or invitation.invited_by.username if invitation.invited_by else ""
    by = f" by {inviter}" if inviter else ""
    days = max(1, round((invitation.expires_at - timezone.now()).total_seconds() / 86400))
    send_mail(
        subject=f"You are invited to {invitation.organization.name} on AgentHub",
        message=(
            f"You have been invited{by} to join {invitation.organization.name} on AgentHub "
            f"as {invitation.get_role_display().lower()}.\n\n"
            f"Accept the invitation here (the link works once, for {days} day{'s' if days != 1 else ''}):\n"
            f"{invitation_link(token)}\n\n"
            "If you did not expect this email, ignore it: nothing happens unless you accept."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def _check_invitation_rate(organization: Organization) -> None:
    key = f"invitations:sent:{organization.pk}:{int(time.time() // 3600)}"
    cache.add(key, 0, timeout=3600)
    try:
        sent = cache.incr(key)
    except ValueError:
        sent = 1
        cache.set(key, 1, timeout=3600)
    if sent > settings.INVITATIONS_PER_HOUR:
        retry = 3600 - int(time.time() % 3600)
        error = ApplicationError(
            f"This organization has sent {settings.INVITATIONS_PER_HOUR} invitations this hour; "
            "try again after the time in the Retry-After header.",
            code="too_many_invitations",
            status_code=429,
            details={"retry_after_seconds": retry},
        )
        error.retry_after = retry
        raise error


@transaction.atomic
def invitation_create(
    *, organization: Organization, actor_role: str, invited_by: User | None, email: str, role: str
) -> Invitation:
    """Invites ``email`` with ``role`` and emails the one-time link. The answer
    does not depend on whether an account with that email exists. Inviting an
    address that has an open invitation renews it (new link, new expiry)."""
    if not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can invite people.")
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise ForbiddenError("Only an owner can invite an owner.")
    email = email.strip()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ConflictError("Someone with this email is already a member of this organization.", code="already_member")
    now = timezone.now()
    Organization.objects.select_for_update().filter(pk=organization.pk).first()  # serialize invites per organization
    existing = Invitation.objects.filter(
        organization=organization, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).first()
    if existing is None:
        open_count = Invitation.objects.filter(
            organization=organization, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).count()
        if open_count >= settings.INVITATIONS_MAX_PENDING:
            raise ConflictError(
                f"This organization has {open_count} pending invitations, the most it may have; "
                "revoke some or wait for them to be accepted.",
                code="too_many_pending_invitations",
            )
    _check_invitation_rate(organization)
    token = secrets.token_urlsafe(32)
    fields = {
        "role": role,
        "token_hash": _token_hash(token),
        "invited_by": invited_by,
        "expires_at": now + timedelta(seconds=settings.INVITATION_TTL_SECONDS),
        "sent_at": now,
    }
    if existing is None:
        invitation = Invitation.objects.create(organization=organization, email=email, **fields)
    else:
        invitation = existing
        for name, value in fields.items():
            setattr(invitation, name, value)
        invitation.save(update_fields=[*fields])
    transaction.on_commit(lambda: _send_invitation(invitation=invitation, token=token))
    return invitation


def invitation_revoke(*, invitation: Invitation, actor_role: str) -> Invitation:
    if not role_at_least(actor_role, Role.ADMIN):
        raise ForbiddenError("Only owners and admins can revoke invitations.")
    now = timezone.now()
    updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    if not updated:
        raise ConflictError("This invitation was already accepted or revoked.", code="invitation_not_pending")
    invitation.revoked_at = now
    return invitation


def invitation_for_token(*, token: str) -> Invitation:
    """The pending invitation behind a link's token; a clear 404/410 otherwise."""
    if not token or len(token) > 128:
        raise NotFoundError("This invitation link is not valid.", code="invitation_not_found")
    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(token_hash=_token_hash(token)).first()
    )
    if invitation is None or not invitation.organization.is_active:
        raise NotFoundError("This invitation link is not valid.", code="invitation_not_found")
    state = invitation.status_at(timezone.now())
    if state != InvitationStatus.PENDING:
        message = {
            InvitationStatus.ACCEPTED: "This invitation has already been used.",
            InvitationStatus.REVOKED: "This invitation was revoked. Ask the organization for a new one.",
            InvitationStatus.EXPIRED: "This invitation has expired. Ask the organization for a new one.",
        }[state]
        raise ApplicationError(message, code=f"invitation_{'used' if state == 'accepted' else state}", status_code=410)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """``user`` accepts the invitation behind ``token`` and becomes a member,
    once: of two concurrent accepts one wins, the other gets 410."""
    invitation = invitation_for_token(token=token)
    if not user.email or user.email.lower() != invitation.email.lower():
        raise ForbiddenError(
            "This invitation was sent to another email address. Sign in as that person, or ask for an "
            "invitation to your own address.",
            code="invitation_wrong_user",
        )
    if Membership.objects.filter(organization=invitation.organization, user=user).exists():
        raise ConflictError("You are already a member of this organization.", code="already_member")
    now = timezone.now()
    claimed = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).update(accepted_at=now, accepted_by=user)
    if not claimed:
        raise ApplicationError("This invitation has already been used.", code="invitation_used", status_code=410)
    return Membership.objects.create(organization=invitation.organization, user=user, role=invitation.role)


@transaction.atomic
def invitation_accept_as_new_user(*, token: str, username: str, password: str) -> Membership:
    """Creates the invitee's account (the email is the invitation's) and accepts."""
    invitation = invitation_for_token(token=token)
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise ConflictError(
            "An account with this email already exists: sign in with it to accept.", code="account_exists"
        )
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(
            "This username is taken; choose another.",
            code="validation_error",
            details={"fields": {"username": ["This username is taken."]}},
        )
    user = User(username=username, email=invitation.email)
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError(
            " ".join(exc.messages), code="validation_error", details={"fields": {"password": exc.messages}}
        ) from None
    user.set_password(password)
    user.save()
    return invitation_accept(token=token, user=user)


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
    api_keys_forget()
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
