import pytest

from accounts.models import Membership
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/orgs/current/members"
MANAGERS = ["owner", "admin"]
NON_MANAGERS = ["operator", "member", "viewer"]


def member_id(bundle, role):
    return str(Membership.objects.get(organization=bundle.organization, user=bundle.users[role]).pk)


@pytest.mark.parametrize("role", MANAGERS + NON_MANAGERS)
def test_every_role_can_list_members(org_a, role):
    response = org_a.client(role).get(URL)
    assert response.status_code == 200
    assert response.json()["count"] == 5
    assert {m["role"] for m in response.json()["results"]} == {"owner", "admin", "operator", "member", "viewer"}


@pytest.mark.parametrize("role", MANAGERS + NON_MANAGERS)
def test_members_cannot_be_added_directly_only_invited(org_a, role):
    """No user lookup by email or username: that was an enumeration oracle and
    membership without consent."""
    newcomer = UserFactory(username="newcomer", email="New.Comer@example.com")
    response = org_a.client(role).post(URL, {"user": "new.comer@example.com", "role": "member"}, format="json")
    # The endpoint serves no POST, whatever the caller's role.
    assert response.status_code == 405
    assert "invitations" in response.json()["error"]["message"]
    assert "newcomer" not in response.content.decode()
    assert not Membership.objects.filter(organization=org_a.organization, user=newcomer).exists()


@pytest.mark.parametrize(
    ("actor", "target", "new_role", "expected"),
    [
        ("owner", "admin", "owner", 200),
        ("owner", "member", "operator", 200),
        ("admin", "member", "operator", 200),
        ("admin", "viewer", "admin", 200),
        ("admin", "member", "owner", 403),
        ("admin", "owner", "member", 403),
        ("admin", "admin", "member", 403),  # only owners demote admins
        ("operator", "member", "viewer", 403),
        ("member", "viewer", "member", 403),
        ("viewer", "member", "viewer", 403),
    ],
)
def test_change_role_matrix(org_a, actor, target, new_role, expected):
    target_id = member_id(org_a, target)
    response = org_a.client(actor).patch(f"{URL}/{target_id}", {"role": new_role}, format="json")
    assert response.status_code == expected, response.json()
    stored = Membership.objects.get(pk=target_id).role
    assert stored == (new_role if expected == 200 else target)


@pytest.mark.parametrize(
    ("actor", "target", "expected"),
    [
        ("owner", "admin", 204),
        ("owner", "viewer", 204),
        ("admin", "operator", 204),
        ("admin", "admin", 403),  # only owners remove admins
        ("owner", "owner", 400),  # yourself: needs ?confirm_self=true
        ("admin", "owner", 403),
        ("operator", "viewer", 403),
        ("member", "viewer", 403),
        ("viewer", "member", 403),
    ],
)
def test_remove_member_matrix(org_a, actor, target, expected):
    if actor == target == "admin":
        org_a.users["admin2"] = UserFactory(username="alpha-admin2")
        Membership.objects.create(organization=org_a.organization, user=org_a.users["admin2"], role="admin")
        target = "admin2"
    target_id = member_id(org_a, target)
    response = org_a.client(actor).delete(f"{URL}/{target_id}")
    assert response.status_code == expected
    assert Membership.objects.filter(pk=target_id).exists() is (expected != 204)


def test_last_owner_cannot_be_removed_or_demoted(org_a):
    owner_id = member_id(org_a, "owner")
    client = org_a.client("owner")

    response = client.delete(f"{URL}/{owner_id}?confirm_self=true")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_owner"
    response = client.patch(f"{URL}/{owner_id}", {"role": "admin"}, format="json")
    assert response.status_code == 409
    assert Membership.objects.get(pk=owner_id).role == "owner"

    # With a second owner, the first may step down.
    assert client.patch(f"{URL}/{member_id(org_a, 'admin')}", {"role": "owner"}, format="json").status_code == 200
    assert client.patch(f"{URL}/{owner_id}", {"role": "admin"}, format="json").status_code == 200


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_removing_yourself_needs_an_explicit_flag(org_a, role):
    if role == "owner":  # not the last one
        Membership.objects.create(organization=org_a.organization, user=UserFactory(), role="owner")
    own = member_id(org_a, role)
    client = org_a.client(role)
    refused = client.delete(f"{URL}/{own}")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "confirm_self_required"
    assert "confirm_self=true" in refused.json()["error"]["message"]
    assert Membership.objects.filter(pk=own).exists()
    assert client.delete(f"{URL}/{own}?confirm_self=true").status_code == 204
    assert not Membership.objects.filter(pk=own).exists()


def test_the_last_owner_cannot_leave_even_with_the_flag(org_a):
    own = member_id(org_a, "owner")
    response = org_a.client("owner").delete(f"{URL}/{own}?confirm_self=true")
    assert response.status_code == 409
    assert Membership.objects.filter(pk=own).exists()


def test_filter_order_and_search(org_a):
    client = org_a.client("viewer")
    assert [m["user"]["username"] for m in client.get(URL, {"role": "admin"}).json()["results"]] == ["alpha-admin"]
    names = [m["user"]["username"] for m in client.get(URL, {"ordering": "-user__username"}).json()["results"]]
    assert names == sorted(names, reverse=True)
    assert client.get(URL, {"search": "opera"}).json()["count"] == 1
    bad = client.get(URL, {"role": "emperor"})
    assert bad.status_code == 400
    assert "role" in bad.json()["error"]["details"]["fields"]


def test_page_size_is_capped(org_a, settings):
    settings.API_MAX_PAGE_SIZE = 2
    body = org_a.client("viewer").get(URL, {"page_size": 1000}).json()
    assert body["count"] == 5
    assert len(body["results"]) == 2


def test_organization_rename_is_admin_only(org_a):
    assert org_a.client("operator").patch("/api/v1/orgs/current", {"name": "X"}, format="json").status_code == 403
    response = org_a.client("admin").patch("/api/v1/orgs/current", {"name": "Alpha Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(org_a.organization.pk),
        "name": "Alpha Renamed",
        "slug": "alpha",
        "created_at": response.json()["created_at"],
        "role": "admin",
        "member_count": 5,
    }
