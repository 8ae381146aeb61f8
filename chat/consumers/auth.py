"""Handshake authentication: a bearer token, or a browser session that points to a live login.

Passwords are never accepted here. A socket that is not authenticated is
accepted and closed at once with 4401, so a client can tell "sign in again"
from a network failure. An address whose handshakes keep failing is not looked
up any more for a while: its sockets are closed with 4429 (chat/consumers/limits.py).
"""

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from channels.sessions import SessionMiddlewareStack
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from accounts.actions import SESSION_KEY, SocketAuth, resolve_socket_auth
from chat.consumers.limits import failed_handshakes

if TYPE_CHECKING:
    from channels.consumer import _ChannelScope
    from channels.utils import _ChannelApplication


def socket_auth(scope: Mapping[str, Any]) -> SocketAuth | None:
    """The socket's login as RoundsAuthMiddleware found it; None for an anonymous one."""
    auth = scope.get("rounds_auth")
    return auth if isinstance(auth, SocketAuth) else None


def handshake_refused(scope: Mapping[str, Any]) -> bool:
    """True when the socket's address failed too many handshakes to be looked up."""
    return scope.get("rounds_handshake_refused") is True


def limited_address(scope: Mapping[str, Any]) -> str | None:
    """The peer's address, whose failed handshakes are counted; None for loopback or a
    peer without an IP address.

    Behind a proxy the peer is the client only with daphne --proxy-headers; without
    it every client would share the proxy's address, and one of them failing would
    lock the others out. A local proxy's loopback address is therefore not counted.
    """
    client = scope.get("client")
    try:
        address = ipaddress.ip_address(client[0]) if client else None
    except ValueError:  # a Unix socket's path
        return None
    if address is None or address.is_loopback:
        return None
    return str(address)


def bearer_token(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return None


class RoundsAuthMiddleware(BaseMiddleware):
    """Sets scope["rounds_auth"] (a `SocketAuth`, None when the socket is anonymous)
    and, as Channels' own middleware does, scope["user"]."""

    async def __call__(
        self, scope: "_ChannelScope", receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> "_ChannelApplication":
        address = limited_address(cast(Mapping[str, Any], scope))
        refused = address is not None and failed_handshakes.exhausted(address)
        auth = None if refused else await self.resolve(cast(Mapping[str, Any], scope))
        if auth is None and address is not None and not refused:
            failed_handshakes.failed(address, settings.ROUNDS_WS_FAILED_HANDSHAKES_PER_MINUTE)
        # Rounds' own keys are not among those the stubs' scope type lists.
        authed: dict[str, Any] = {
            **scope,
            "rounds_auth": auth,
            "rounds_handshake_refused": refused,
        }
        authed["user"] = auth.user if auth else AnonymousUser()
        return await super().__call__(cast("_ChannelScope", authed), receive, send)

    async def resolve(self, scope: Mapping[str, Any]) -> SocketAuth | None:
        token = bearer_token(scope)
        auth_session_id, key = None, None
        session = scope.get("session")
        if token is None and session is not None:
            auth_session_id, key = await session.aget(SESSION_KEY), session.session_key
        return await database_sync_to_async(resolve_socket_auth)(token, auth_session_id, key)


def websocket_stack(inner: Any) -> OriginValidator:
    """Origin check first (an explicit allow-list with scheme), then session, then auth."""
    return OriginValidator(
        SessionMiddlewareStack(RoundsAuthMiddleware(inner)),
        settings.ROUNDS_ALLOWED_ORIGINS,
    )
