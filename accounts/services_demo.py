"""The demo organization (``manage.py seed_demo``): idempotent, so running it
again restores the same state.  Later features add their demo data through
:func:`register_demo_seeder`."""

from collections.abc import Callable

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.roles import Role

DEMO_ORG_SLUG = "demo"
STAFF_ROLES = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
STAFF_GROUP = "Organization staff"

_seeders: list[Callable[[Organization, dict[str, User]], list[str]]] = []


def register_demo_seeder(func):
    """``func(organization, users_by_role)`` adds demo data and returns lines
    to print.  Higher apps register here; accounts never imports them."""
    if func not in _seeders:
        _seeders.append(func)
    return func


def _staff_group() -> Group:
    group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=_staff_app_labels()))
    return group


def _staff_app_labels() -> list[str]:
    from django.apps import apps

    return [config.label for config in apps.get_app_configs() if config.name in _STAFF_APPS]


_STAFF_APPS = {"accounts", "agents", "tools", "chat", "workflows", "billing", "analytics", "integrations"}


@transaction.atomic
def demo_seed(*, password: str) -> tuple[Organization, dict[str, User], list[str]]:
    org, _ = Organization.objects.get_or_create(slug=DEMO_ORG_SLUG, defaults={"name": "Demo Organization"})
    group = _staff_group()
    users: dict[str, User] = {}
    for role in Role.values:
        user, _ = User.objects.get_or_create(
            username=f"demo-{role}", defaults={"email": f"demo-{role}@example.com", "first_name": role.title()}
        )
        user.set_password(password)
        user.is_staff = role in STAFF_ROLES
        user.is_active = True
        user.save()
        if user.is_staff:
            user.groups.add(group)
        Membership.objects.update_or_create(organization=org, user=user, defaults={"role": role})
        users[role] = user
    superuser, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    superuser.is_staff = superuser.is_superuser = True
    superuser.set_password(password)
    superuser.save()
    lines: list[str] = []
    for seeder in _seeders:
        lines.extend(seeder(org, users))
    return org, users, lines
