"""Handshake authentication: a bearer token, or a browser session that points to a live login.

Passwords are never accepted here. A socket that is not authenticated is
accepted and closed at once with 4401, so a client can tell "sign in again"
from a network failure.
"""

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from accounts.actions import SESSION_KEY, resolve_session, resolve_token


def bearer_token(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


class RoundsAuthMiddleware(BaseMiddleware):  # type: ignore[misc]  # channels is untyped
    """Sets scope["user"], scope["auth_session_id"] and scope["auth_expires_at"].

    The last two are None when the socket is anonymous.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = bearer_token(scope)
        if token is not None:
            auth_session = await database_sync_to_async(resolve_token)(token)
        else:
            session = scope.get("session")
            auth_session_id = await session.aget(SESSION_KEY) if session is not None else None
            key = session.session_key if session is not None else None
            auth_session = await database_sync_to_async(resolve_session)(auth_session_id, key)
        scope = dict(scope)
        scope["user"] = auth_session.user if auth_session else AnonymousUser()
        scope["auth_session_id"] = auth_session.pk if auth_session else None
        scope["auth_expires_at"] = auth_session.expires_at if auth_session else None
        return await super().__call__(scope, receive, send)


def websocket_stack(inner: Any) -> OriginValidator:
    """Origin check first (an explicit allow-list with scheme), then session, then auth."""
    return OriginValidator(
        SessionMiddlewareStack(RoundsAuthMiddleware(inner)),
        settings.ROUNDS_ALLOWED_ORIGINS,
    )
