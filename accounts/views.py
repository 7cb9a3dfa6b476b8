"""Browser pages of the accounts app: the admin's login door and the
invitation link."""

from django import forms
from django.contrib import admin
from django.contrib.auth import authenticate
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from accounts import services
from accounts.lockout import LoginLocked
from accounts.models import User
from agenthub.errors import ApplicationError


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


class _InvitationLoginForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, max_length=512)


class _InvitationSignupForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = forms.CharField(widget=forms.PasswordInput, max_length=512)
    password_again = forms.CharField(widget=forms.PasswordInput, max_length=512, label="Password (again)")

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


@never_cache
@sensitive_post_parameters("password", "password_again")
@csrf_protect
def invitation_page(request, token: str):
    """The one-time link of an invitation: an existing account signs in and
    accepts, a new person creates an account and accepts; either way they
    become a member only here."""
    try:
        invitation = services.invitation_for_token(token=token)
    except ApplicationError as exc:
        return render(request, "invitations/accept.html", {"error": exc.message}, status=exc.status_code)
    context = {
        "invitation": invitation,
        "login_form": _InvitationLoginForm(),
        "signup_form": _InvitationSignupForm(),
        "has_account": User.objects.filter(email__iexact=invitation.email).exists(),
    }
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "login":
                form = _InvitationLoginForm(request.POST)
                context["login_form"] = form
                if form.is_valid():
                    user = authenticate(request, **form.cleaned_data)
                    if user is None:
                        form.add_error(None, "The username or password is wrong.")
                    else:
                        membership = services.invitation_accept(token=token, user=user)
                        return render(request, "invitations/accept.html", {"membership": membership})
            elif action == "signup":
                form = _InvitationSignupForm(request.POST)
                context["signup_form"] = form
                if form.is_valid():
                    membership = services.invitation_accept_as_new_user(
                        token=token, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
                    )
                    return render(request, "invitations/accept.html", {"membership": membership})
            else:
                return render(request, "invitations/accept.html", {"error": "Unknown action."}, status=400)
        except ApplicationError as exc:
            context["error"] = exc.message
            status = exc.status_code
            response = render(request, "invitations/accept.html", context, status=status)
            if getattr(exc, "retry_after", None):
                response["Retry-After"] = str(exc.retry_after)
            return response
        return render(request, "invitations/accept.html", context, status=400)
    return render(request, "invitations/accept.html", context)
