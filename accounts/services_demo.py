"""The demo organization (``manage.py seed_demo``).  Seeding creates what is
missing and leaves what exists alone, so running it again keeps the demo
users' passwords, sessions and tokens and the changes made to the demo
data; ``reset=True`` (``seed_demo --reset``) restores the original state.
Later features add their demo data through :func:`register_demo_seeder`."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.models import Membership, Organization, User
from accounts.roles import Role

DEMO_ORG_SLUG = "demo"
DEMO_PASSWORD = "agenthub-demo"  # noqa: S105  (the documented demo password, DEBUG only)
SUPERUSER = "admin"
STAFF_ROLES = (Role.OWNER, Role.ADMIN, Role.OPERATOR)
STAFF_GROUP = "Organization staff"

_seeders: list[Callable[..., list[str]]] = []


def register_demo_seeder(func):
    """``func(organization, users_by_role, *, reset)`` adds demo data and
    returns lines to print.  Without ``reset`` it creates only what is missing
    and leaves existing data as it is; with ``reset`` it restores its data to
    the original state.  Higher apps register here; accounts never imports
    them."""
    if func not in _seeders:
        _seeders.append(func)
    return func


@dataclass
class DemoSeed:
    organization: Organization
    users: dict[str, User]  # by role
    superuser: User
    # Usernames whose password was set to the given password by this run
    # (created now, or all of them on reset); the others kept theirs.
    password_set: set[str] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)


def _staff_group(*, reset: bool) -> Group:
    """The staff group with the staff apps' permissions: missing ones are
    added (an app may have gained models since the first seed), none removed
    unless ``reset``."""
    group, _ = Group.objects.get_or_create(name=STAFF_GROUP)
    permissions = Permission.objects.filter(content_type__app_label__in=_staff_app_labels())
    if reset:
        group.permissions.set(permissions)
    else:
        group.permissions.add(*permissions)
    return group


def _staff_app_labels() -> list[str]:
    from django.apps import apps

    return [config.label for config in apps.get_app_configs() if config.name in _STAFF_APPS]


_STAFF_APPS = {"accounts", "agents", "tools", "chat", "workflows", "billing", "analytics", "integrations"}


def _demo_user(username: str, *, defaults: dict, password: str, reset: bool, **flags: bool) -> tuple[User, bool]:
    """The user ``username``, created with ``password`` and ``flags`` when
    missing.  An existing one is not saved at all unless ``reset``: setting a
    password (even the same one) changes the hash that sessions are bound to,
    which would log the user out.  Returns the user and whether its password
    was set."""
    user = User.objects.filter(username=username).first()
    if user is not None and not reset:
        return user, False
    if user is None:
        user = User(username=username, **defaults)
    user.set_password(password)
    for name, value in flags.items():
        setattr(user, name, value)
    user.is_active = True
    user.save()
    return user, True


@transaction.atomic
def demo_seed(*, password: str = DEMO_PASSWORD, reset: bool = False) -> DemoSeed:
    org, _ = Organization.objects.get_or_create(slug=DEMO_ORG_SLUG, defaults={"name": "Demo Organization"})
    group = _staff_group(reset=reset)
    users: dict[str, User] = {}
    password_set: set[str] = set()
    for role in Role.values:
        user, changed = _demo_user(
            f"demo-{role}",
            defaults={"email": f"demo-{role}@example.com", "first_name": role.title()},
            password=password,
            reset=reset,
            is_staff=role in STAFF_ROLES,
        )
        if changed:
            password_set.add(user.username)
            if user.is_staff:
                user.groups.add(group)
        if reset:
            Membership.objects.update_or_create(organization=org, user=user, defaults={"role": role})
        else:
            Membership.objects.get_or_create(organization=org, user=user, defaults={"role": role})
        users[role] = user
    superuser, changed = _demo_user(
        SUPERUSER,
        defaults={"email": f"{SUPERUSER}@example.com"},
        password=password,
        reset=reset,
        is_staff=True,
        is_superuser=True,
    )
    if changed:
        password_set.add(superuser.username)
    seed = DemoSeed(organization=org, users=users, superuser=superuser, password_set=password_set)
    for seeder in _seeders:
        seed.lines.extend(seeder(org, users, reset=reset))
    return seed
