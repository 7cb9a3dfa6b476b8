"""The caller's organization and role, resolved once per request.

Every API view that touches tenant-owned rows derives from
:class:`TenantScopedMixin`, whose ``get_queryset`` is always filtered by the
caller's organization: a view cannot forget the scope, and another
organization's object is simply not found (404, never 403, never data).
"""

import uuid
from dataclasses import dataclass

from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated

from accounts.models import ApiKey, Membership, Organization, User
from accounts.roles import role_at_least
from agenthub.errors import NotFoundError

ORG_HEADER = "HTTP_X_ORGANIZATION"
ORG_CLAIM = "org"
_CACHE_ATTR = "_agenthub_tenant"


@dataclass(frozen=True)
class Tenant:
    organization: Organization
    role: str
    user: User | None = None
    api_key: ApiKey | None = None

    def has_role(self, minimum: str) -> bool:
        return role_at_least(self.role, minimum)


def org_lookup_filter(value: str) -> dict:
    try:
        return {"organization_id": uuid.UUID(value)}
    except ValueError:
        return {"organization__slug": value}


def tenant_for_request(request) -> Tenant:
    """The organization the request acts in, and the caller's role there.

    API keys act in their own organization.  Users act in the organization
    named by the ``X-Organization`` header (id or slug), else the ``org`` claim
    of their token, else their first membership.
    """
    django_request = getattr(request, "_request", request)
    cached = getattr(django_request, _CACHE_ATTR, None)
    if cached is not None:
        return cached

    user = request.user
    auth = getattr(request, "auth", None)
    requested = (django_request.META.get(ORG_HEADER) or "").strip()
    if not user or not user.is_authenticated:
        raise NotAuthenticated()

    if isinstance(auth, ApiKey):
        org = auth.organization
        if requested and requested not in (str(org.pk), org.slug):
            raise _org_not_found()
        tenant = Tenant(organization=org, role=auth.role, api_key=auth)
    else:
        claimed = str(auth.get(ORG_CLAIM) or "") if auth is not None and hasattr(auth, "get") else ""
        # A token issued for a membership is valid only while that membership
        # exists (and its organization is enabled): otherwise 401, everywhere.
        other = claimed and requested and requested != claimed
        if other and not membership_of_claim_exists(user_id=user.pk, organization_id=claimed):
            raise _membership_gone()
        requested = requested or claimed
        memberships = Membership.objects.select_related("organization").filter(user=user, organization__is_active=True)
        if requested:
            if len(requested) > 64:
                raise _org_not_found()
            memberships = memberships.filter(**org_lookup_filter(requested))
        membership = memberships.order_by("created_at").first()
        if membership is None:
            if claimed and requested == claimed:
                raise _membership_gone()
            if requested:
                raise _org_not_found()
            raise NotFoundError(
                "You are not a member of any organization. Ask an organization admin to invite you.",
                code="no_organization",
            )
        tenant = Tenant(organization=membership.organization, role=membership.role, user=user)

    setattr(django_request, _CACHE_ATTR, tenant)
    return tenant


def _membership_gone() -> AuthenticationFailed:
    return AuthenticationFailed(
        "The membership this token was issued for no longer exists. Log in again.", code="membership_revoked"
    )


def membership_of_claim_exists(*, user_id, organization_id: str) -> bool:
    """Whether the membership a token was issued for still exists."""
    try:
        uuid.UUID(str(organization_id))
    except ValueError:
        return False
    return Membership.objects.filter(
        user_id=user_id, organization_id=organization_id, organization__is_active=True
    ).exists()


def _org_not_found() -> NotFoundError:
    return NotFoundError(
        "No organization you belong to matches the X-Organization header or token claim.",
        code="organization_not_found",
    )


class TenantScopedMixin:
    """For DRF views over one tenant-owned model (``tenant_model``)."""

    tenant_model = None

    @property
    def tenant(self) -> Tenant:
        return tenant_for_request(self.request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return self.tenant_model.objects.none()
        return self.scope_queryset(self.tenant_model.objects.all())

    def scope_queryset(self, queryset):
        return queryset.for_organization(self.tenant.organization)
