"""DRF permissions by minimum role in the caller's organization.

Views declare ``read_role`` (safe methods) and ``write_role`` (everything else),
or ``action_roles`` for named viewset actions; the defaults are viewer to read
and admin to write.
"""

from rest_framework import permissions

from accounts.roles import Role
from accounts.tenancy import tenant_for_request


class HasOrganizationRole(permissions.BasePermission):
    message = "Your role in this organization does not allow this action."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        tenant = tenant_for_request(request)
        if not _has_handler(request, view):
            return True  # the view answers 405 Method Not Allowed, whatever the role
        return tenant.has_role(required_role(request, view))


def _has_handler(request, view) -> bool:
    """Whether the view serves the request's method (a viewset binds only the
    methods its router mapped to an action)."""
    method = request.method.lower()
    return method in view.http_method_names and hasattr(view, method)


def required_role(request, view) -> str:
    action = getattr(view, "action", None)
    by_action = getattr(view, "action_roles", {})
    if action in by_action:
        return by_action[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", Role.VIEWER)
    return getattr(view, "write_role", Role.ADMIN)
