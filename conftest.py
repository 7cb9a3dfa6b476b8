"""Fixtures shared by every app's tests."""

from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Organization, User
from accounts.roles import Role
from accounts.tests.factories import MembershipFactory, OrganizationFactory, UserFactory


@pytest.fixture(scope="session", autouse=True)
def _close_connections_of_the_sync_thread(django_db_setup, django_db_blocker):
    """Async tests reach the ORM through asgiref's shared sync thread; close
    its connection before the test database is dropped."""
    yield
    import asyncio

    from channels.db import database_sync_to_async
    from django.db import connections

    from agenthub.db import close_pool_connections

    with django_db_blocker.unblock():
        asyncio.run(database_sync_to_async(connections.close_all)())
        close_pool_connections()


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle buckets, tickets and cached state never leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def jwt_client(user: User, organization: Organization | None = None) -> APIClient:
    """A client sending a real access token, as an API user would."""
    refresh = RefreshToken.for_user(user)
    if organization is not None:
        refresh["org"] = str(organization.pk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    return client


@dataclass
class OrgWithRoles:
    organization: Organization
    users: dict[str, User] = field(default_factory=dict)

    def client(self, role: str) -> APIClient:
        return jwt_client(self.users[role], self.organization)


def _org_with_roles(prefix: str) -> OrgWithRoles:
    org = OrganizationFactory(name=f"{prefix} Inc", slug=prefix)
    bundle = OrgWithRoles(organization=org)
    for role in Role.values:
        user = UserFactory(username=f"{prefix}-{role}")
        MembershipFactory(organization=org, user=user, role=role)
        bundle.users[role] = user
    return bundle


@pytest.fixture
def org_a(db) -> OrgWithRoles:
    return _org_with_roles("alpha")


@pytest.fixture
def org_b(db) -> OrgWithRoles:
    return _org_with_roles("bravo")
