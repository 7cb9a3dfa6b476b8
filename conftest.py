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


def journal_clear() -> None:
    """The write-behind stream starts empty in every test."""
    from django.conf import settings

    from agenthub import journal

    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            client.delete(journal.STREAM, journal.DEAD_STREAM)
        finally:
            client.close()


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle buckets, tickets and cached state never leak between tests."""
    from django.core.cache import cache

    from accounts.authentication import api_keys_forget
    from agenthub import drain
    from agenthub.ratelimit import reset_local_state
    from billing.services.metering import billing_caches_clear
    from integrations.llm.breaker import breakers
    from integrations.llm.cache import response_cache
    from integrations.llm.deployments import routes

    cache.clear()
    journal_clear()
    api_keys_forget()
    reset_local_state()
    billing_caches_clear()
    breakers.reset_all_sync()
    drain.reset()
    response_cache.clear_all_sync()
    routes.invalidate()
    routes.stats.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _celery_follows_the_settings_fixture():
    """``settings.CELERY_TASK_ALWAYS_EAGER = True`` in a test makes the Celery
    app eager too (it read its configuration once, at start-up)."""
    from django.core.signals import setting_changed

    from agenthub.celery import app

    def sync(setting, value, **kwargs):
        if setting == "CELERY_TASK_ALWAYS_EAGER":
            app.conf.task_always_eager = bool(value)
        elif setting == "CELERY_TASK_EAGER_PROPAGATES":
            app.conf.task_eager_propagates = bool(value)

    setting_changed.connect(sync, weak=False, dispatch_uid="agenthub-celery-eager")
    yield
    setting_changed.disconnect(dispatch_uid="agenthub-celery-eager")


@pytest.fixture(scope="session")
def mock_server():
    """One mock model server for the session (the project's OpenAI-compatible
    mock, over HTTP): 8-token answers, no delays.  Tests inject faults or tool
    calls per request with ``[[mock:...]]`` directives; its ``stats`` are
    shared, so compare differences."""
    from integrations.llm.testing.mock_server import MockConfig, MockServer

    with MockServer(MockConfig(tokens=8, retry_after_ms=10)) as server:
        yield server


@pytest.fixture
def llm_settings(settings, mock_server):
    """Settings that route every non-offline model to the mock server."""
    settings.OPENAI_BASE_URL = mock_server.base_url
    settings.OPENAI_API_KEY = ""
    settings.LLM_TIMEOUT_SECONDS = 5.0
    settings.LLM_CONNECT_TIMEOUT_SECONDS = 2.0
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_OFFLINE_TOKEN_DELAY_MS = 0
    return settings


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
