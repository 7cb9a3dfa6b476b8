"""Who is acting: a member (user), an API key, and soon a widget visitor or a
Slack user, in one organization with one role.  Every surface builds its
``Caller`` here, and the rule "your own rows unless you are an operator" is
applied here, once, for every list and lookup that needs it."""

from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.roles import Role, role_at_least

# From this role up, a caller sees every conversation, draft and tool call of
# the organization; below it, only their own.
OVERSEER_ROLE = Role.OPERATOR


@dataclass(frozen=True)
class Caller:
    organization_id: str
    role: str
    user_id: str | None = None
    api_key_id: str | None = None
    visitor_id: str = ""

    @classmethod
    def from_tenant(cls, tenant) -> "Caller":
        """From a request's :class:`accounts.tenancy.Tenant` (API surfaces)."""
        return cls(
            organization_id=str(tenant.organization.pk),
            role=tenant.role,
            user_id=str(tenant.user.pk) if tenant.user is not None else None,
            api_key_id=str(tenant.api_key.pk) if tenant.api_key is not None else None,
        )

    @classmethod
    def from_scope(cls, scope) -> "Caller":
        """From an authenticated websocket scope (:mod:`accounts.channels_auth`)."""
        api_key = scope.get("api_key")
        return cls(
            organization_id=str(scope["organization"].pk),
            role=scope["role"],
            user_id=None if api_key is not None else str(scope["user"].pk),
            api_key_id=str(api_key.pk) if api_key is not None else None,
        )

    @classmethod
    def from_member(cls, *, organization_id, role: str, user_id) -> "Caller":
        """A signed-in member acting in the admin or the terminal."""
        return cls(organization_id=str(organization_id), role=role or "", user_id=str(user_id))

    @property
    def principal(self) -> str:
        """Whose actions these are, for per-principal limits: a user, an API
        key (its own principal) or a widget visitor, within the organization."""
        if self.user_id:
            who = f"user:{self.user_id}"
        elif self.api_key_id:
            who = f"key:{self.api_key_id}"
        else:
            who = f"visitor:{self.visitor_id}"
        return f"{self.organization_id}:{who}"

    def has_role(self, minimum: str) -> bool:
        return role_at_least(self.role, minimum)

    @property
    def sees_all_rows(self) -> bool:
        return role_at_least(self.role, OVERSEER_ROLE)


def row_visible_to(caller: Caller, *, user_id, api_key_id, visitor_id="") -> bool:
    """One row's owner fields against the rule: operators and above see every
    row of their organization, others only their own."""
    if caller.sees_all_rows:
        return True
    if caller.user_id is not None and str(user_id) == caller.user_id:
        return True
    if caller.api_key_id is not None and str(api_key_id) == caller.api_key_id:
        return True
    return bool(caller.visitor_id) and visitor_id == caller.visitor_id


def rows_visible_to(
    queryset: QuerySet, caller: Caller, *, user_field: str, api_key_field: str, visitor_field: str | None = None
) -> QuerySet:
    """The organization's rows of ``queryset`` that ``caller`` may see (the
    same rule as :func:`row_visible_to`, as a filter)."""
    queryset = queryset.filter(organization_id=caller.organization_id)
    if caller.sees_all_rows:
        return queryset
    if caller.api_key_id is not None:
        return queryset.filter(**{f"{api_key_field}_id": caller.api_key_id})
    if caller.user_id is not None:
        return queryset.filter(**{f"{user_field}_id": caller.user_id})
    if caller.visitor_id and visitor_field:
        return queryset.filter(**{visitor_field: caller.visitor_id})
    return queryset.none()
