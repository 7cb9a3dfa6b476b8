"""Reads for accounts: every query that lists tenant-owned rows takes the
organization."""

from django.db.models import QuerySet

from accounts.models import ApiKey, Membership, Organization, User


def memberships_of_user(*, user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__is_active=True)
        .order_by("created_at")
    )


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_organization(organization).select_related("user")


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_organization(organization).select_related("created_by")
