"""Websocket authentication for Channels.

Browsers cannot set headers on a websocket, so a client first gets a
one-time ticket over the authenticated HTTP API and connects with
``?ticket=...``.  Other credentials (the widget's visitor tokens) plug in
through :func:`register_websocket_authenticator`, so higher apps extend this
without accounts importing them.

After this middleware the scope carries ``user`` (AnonymousUser when nothing
authenticated; an ApiKeyPrincipal for a key's ticket), ``api_key``,
``organization``, ``role``, ``ticket_extra`` and, when a credential was
offered and refused, ``auth_error``.  Consumers decide whether anonymity is allowed.
"""

from collections.abc import Callable
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from accounts.authentication import ApiKeyPrincipal
from accounts.models import ApiKey, Membership
from accounts.services import ws_ticket_redeem
from agenthub.errors import ApplicationError

# Each authenticator takes (query: dict[str, list[str]]) and returns None when
# the query holds none of its credentials, or a dict with user/organization/role.
_authenticators: list[Callable[[dict], dict | None]] = []


def register_websocket_authenticator(func: Callable[[dict], dict | None]) -> Callable[[dict], dict | None]:
    if func not in _authenticators:
        _authenticators.append(func)
    return func


def ticket_authenticator(query: dict) -> dict | None:
    ticket = (query.get("ticket") or [""])[0]
    if not ticket:
        return None
    payload = ws_ticket_redeem(ticket=ticket)
    extra = payload.get("extra") or {}
    if payload.get("api_key_id"):
        key = ApiKey.objects.select_related("organization").filter(pk=payload["api_key_id"]).first()
        now = timezone.now()
        usable = (
            key is not None
            and key.revoked_at is None
            and (key.expires_at is None or key.expires_at > now)
            and key.organization.is_active
            and str(key.organization_id) == payload["organization_id"]
        )
        if not usable:
            raise ApplicationError("The ticket's API key is no longer valid.", code="invalid_ticket")
        return {
            "user": ApiKeyPrincipal(key),
            "api_key": key,
            "organization": key.organization,
            "role": key.role,
            "ticket_extra": extra,
        }
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(
            user_id=payload["user_id"],
            organization_id=payload["organization_id"],
            user__is_active=True,
            organization__is_active=True,
        )
        .first()
    )
    if membership is None:
        raise ApplicationError("The ticket's user is no longer a member of the organization.", code="invalid_ticket")
    return {
        "user": membership.user,
        "api_key": None,
        "organization": membership.organization,
        "role": membership.role,
        "ticket_extra": extra,
    }


register_websocket_authenticator(ticket_authenticator)


@database_sync_to_async
def _authenticate(query: dict) -> dict:
    for authenticator in _authenticators:
        try:
            result = authenticator(query)
        except ApplicationError as exc:
            return {"auth_error": {"code": exc.code, "message": exc.message}}
        if result is not None:
            return result
    return {}


class WebsocketAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        result = await _authenticate(query)
        scope = dict(
            scope,
            user=result.get("user") or AnonymousUser(),
            organization=result.get("organization"),
            role=result.get("role"),
            api_key=result.get("api_key"),
            ticket_extra=result.get("ticket_extra") or {},
            auth_error=result.get("auth_error"),
        )
        return await super().__call__(scope, receive, send)
