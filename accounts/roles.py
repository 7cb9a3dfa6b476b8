"""Roles inside an organization, strongest first: owner > admin > operator >
member > viewer."""

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    OPERATOR = "operator", "Operator"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


ROLE_RANK: dict[str, int] = {
    Role.OWNER: 50,
    Role.ADMIN: 40,
    Role.OPERATOR: 30,
    Role.MEMBER: 20,
    Role.VIEWER: 10,
}


def role_at_least(role: str | None, minimum: str) -> bool:
    """True when ``role`` is ``minimum`` or stronger."""
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]
