"""Browser pages of the accounts app (the admin's login door)."""

from django.contrib import admin
from django.shortcuts import render

from accounts.lockout import LoginLocked


def admin_login(request, **kwargs):
    """The admin's login page behind the lock-out rule: a locked account or
    address gets a 429 page with ``Retry-After`` instead of the form."""
    try:
        return admin.site.login(request, **kwargs)
    except LoginLocked as exc:
        response = render(
            request,
            "admin/login_locked.html",
            {**admin.site.each_context(request), "message": exc.message, "title": "Too many failed logins"},
            status=429,
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
