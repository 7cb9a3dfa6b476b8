"""Failed logins are limited per account and per address at both doors (the
API's token endpoint and the admin login), with growing back-off and 429
Retry-After; forged X-Forwarded-For changes nothing; API-key guessing is
limited per address."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def rules(settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 20
    settings.LOGIN_LOCKOUT_SECONDS = 60
    settings.LOGIN_LOCKOUT_MAX_SECONDS = 3600
    settings.API_KEY_FAILURES_PER_ADDRESS = 20
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "anon": "100000/min"}  # isolate the lock-out rule
    return settings


def api_login(client, username, password, addr="203.0.113.9", forwarded=None):
    extra = {"REMOTE_ADDR": addr}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def admin_login(client, username, password, addr="203.0.113.9", forwarded=None):
    extra = {"REMOTE_ADDR": addr}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client.post(ADMIN_LOGIN, {"username": username, "password": password, "next": "/admin/"}, **extra)


def test_rotating_forwarded_for_does_not_escape_the_address_limit(org_a):
    client = APIClient()
    statuses = [
        api_login(client, f"nobody-{n}", "wrong", forwarded=f"198.51.100.{n % 250}").status_code for n in range(200)
    ]
    assert statuses[:19] == [401] * 19
    assert set(statuses[19:]) == {429}
    locked = api_login(client, "alpha-member", PASSWORD)  # the right password from that address
    assert locked.status_code == 429
    assert 30 < int(locked["Retry-After"]) <= 60
    body = locked.json()["error"]
    assert body["code"] == "too_many_login_failures"
    assert body["details"]["retry_after_seconds"] == int(locked["Retry-After"])
    # Another address is not affected.
    assert api_login(client, "alpha-member", PASSWORD, addr="192.0.2.44").status_code == 200


def test_an_account_is_locked_whatever_the_address_and_others_still_log_in(org_a):
    client = APIClient()
    codes = [api_login(client, "alpha-owner", "wrong", addr=f"192.0.2.{n}").status_code for n in range(1, 8)]
    assert codes == [401, 401, 401, 401, 429, 429, 429]
    assert api_login(client, "alpha-owner", PASSWORD, addr="192.0.2.100").status_code == 429
    assert api_login(client, "ALPHA-OWNER", PASSWORD, addr="192.0.2.100").status_code == 429  # same account
    # The same address still serves other accounts.
    assert api_login(client, "alpha-member", PASSWORD, addr="192.0.2.1").status_code == 200


def test_the_lock_ends_and_each_next_lock_lasts_twice_as_long(org_a, monkeypatch):
    import accounts.lockout as lockout

    now = [1_000_000.0]
    monkeypatch.setattr(lockout.time, "time", lambda: now[0])

    def lock_once():
        for _ in range(5):
            api_login(APIClient(), "alpha-admin", "wrong")
        return api_login(APIClient(), "alpha-admin", PASSWORD)

    first = lock_once()
    assert (first.status_code, first["Retry-After"]) == (429, "60")
    now[0] += 61
    assert lockout.locked_for("account", "alpha-admin") == 0
    assert api_login(APIClient(), "alpha-admin", PASSWORD).status_code == 200
    second = lock_once()
    assert (second.status_code, second["Retry-After"]) == (429, "120")
    now[0] += 121
    third = lock_once()
    assert (third.status_code, third["Retry-After"]) == (429, "240")


def test_a_successful_login_clears_the_accounts_count(org_a):
    client = APIClient()
    for _ in range(4):
        assert api_login(client, "alpha-viewer", "wrong").status_code == 401
    assert api_login(client, "alpha-viewer", PASSWORD).status_code == 200
    for _ in range(4):
        assert api_login(client, "alpha-viewer", "wrong").status_code == 401
    assert api_login(client, "alpha-viewer", PASSWORD).status_code == 200


def test_admin_login_has_the_same_rule(client, org_a):
    staff = UserFactory(username="staffer", is_staff=True)
    statuses = [admin_login(client, "staffer", "wrong", forwarded=f"198.51.100.{n}").status_code for n in range(8)]
    assert statuses[:4] == [200] * 4  # the form again, with an error
    assert set(statuses[4:]) == {429}
    locked = admin_login(client, "staffer", PASSWORD)
    assert locked.status_code == 429
    assert locked["Retry-After"] == "60"
    assert b"Too many failed logins" in locked.content
    assert b"Traceback" not in locked.content
    assert "_auth_user_id" not in client.session
    # The API door shares the rule: the account is locked there too.
    assert api_login(APIClient(), staff.username, PASSWORD, addr="192.0.2.9").status_code == 429


def test_login_unlock_command_lifts_a_lock(org_a):
    for _ in range(5):
        api_login(APIClient(), "alpha-operator", "wrong")
    assert api_login(APIClient(), "alpha-operator", PASSWORD).status_code == 429
    call_command("login_unlock", "--user", "alpha-operator", "--address", "203.0.113.9")
    assert api_login(APIClient(), "alpha-operator", PASSWORD).status_code == 200


def test_trusted_proxy_makes_forwarded_clients_independent(org_a, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()
    for n in range(20):
        api_login(client, f"nobody-{n}", "wrong", addr="10.0.0.2", forwarded="198.51.100.1")
    assert api_login(client, "alpha-member", PASSWORD, addr="10.0.0.2", forwarded="198.51.100.1").status_code == 429
    assert api_login(client, "alpha-member", PASSWORD, addr="10.0.0.2", forwarded="198.51.100.2").status_code == 200


def test_api_key_guessing_is_limited_per_address(org_a):
    from accounts.services import api_key_create

    _, raw = api_key_create(organization=org_a.organization, name="real", actor_role="owner")
    client = APIClient()
    codes = []
    for n in range(25):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer ahk_guess{n}_{'x' * 30}")
        codes.append(client.get("/api/v1/me", REMOTE_ADDR="203.0.113.50").status_code)
    assert codes[:19] == [401] * 19
    assert set(codes[19:]) == {429}
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    refused = client.get("/api/v1/me", REMOTE_ADDR="203.0.113.50")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_invalid_api_keys"
    assert int(refused["Retry-After"]) > 0
    assert client.get("/api/v1/me", REMOTE_ADDR="203.0.113.51").status_code == 200
