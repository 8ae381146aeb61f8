"""Signing in and out, and turning a token or a session into a user.

Passwords are only ever checked here, through `aauthenticate(request=…)`,
so django-axes counts every attempt and refuses a locked (username, IP)
before the password is even looked at.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import aauthenticate, login, logout
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.middleware.csrf import get_token
from django.utils import timezone

from accounts.devices import admit, device_name
from accounts.factors.signin import second_step
from accounts.lockout import LockedOut, lockout_data
from accounts.models import AuthSession, User, hash_token, new_token
from audit.actions import record
from chat.events import close_session_sockets
from core.errors import N_, ErrorCode, RoundsError

SESSION_KEY = "rounds_auth_session"


class InvalidCredentials(RoundsError):
    code = ErrorCode.INVALID_CREDENTIALS
    default_message = N_("Wrong username or password.")


def client_ip(request: Any) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


async def do_login(
    request: Any, username: str, password: str, device: str | None = None
) -> dict[str, Any]:
    """Check the password, then open the login, or the second step it still needs.

    Raises LockedOut (axes refused the attempt), InvalidCredentials, or, with the
    password right, SecondFactorRequired / SecondFactorSetupRequired carrying the
    step's token (accounts/factors). The failure audit is written by the
    `user_login_failed` signal handler.
    """
    user = await aauthenticate(request=request, username=username, password=password)
    if user is None:
        if getattr(request, "axes_locked_out", False):
            raise LockedOut(data=lockout_data())
        raise InvalidCredentials()
    return await sync_to_async(_after_password)(request, user, device)


def _after_password(request: Any, user: User, device: str | None) -> dict[str, Any]:
    pending = second_step(user, device or "")
    if pending is not None:
        raise pending
    return finish_login(request, user, device, "password")


def finish_login(request: Any, user: User, device: str | None, factor: str) -> dict[str, Any]:
    """Open the login once every step is done: a browser session and a bearer token.

    `factor` is what finished it (`password`, `totp`, `backup_code`, `passkey`), kept
    in the audit entry.
    """
    # The API login writes its own audit entry, naming the login it opens.
    request.rounds_audits_login = True
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[-1])
    token = new_token()
    auth_session = _open_auth_session(request, user, token, device, factor)
    request.session[SESSION_KEY] = auth_session.pk
    request.session.save()
    return {
        "token": token,
        "expires_at": auth_session.expires_at.isoformat(),
        "user": user_data(user),
        "csrf_token": get_token(request),
    }


def _open_auth_session(
    request: Any, user: User, token: str, device: str | None, factor: str
) -> AuthSession:
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:200]
    with transaction.atomic():
        auth_session = AuthSession.objects.create(
            user=user,
            token_hash=hash_token(token),
            session_key=request.session.session_key or "",
            expires_at=timezone.now() + timedelta(seconds=settings.ROUNDS_TOKEN_SECONDS),
            ip=client_ip(request),
            user_agent=user_agent,
            device_name=device_name(device, user_agent),
        )
        record(
            "auth.login",
            actor=user,
            object_type="auth_session",
            object_id=auth_session.pk,
            data={"factor": factor},
            ip=client_ip(request),
        )
    return auth_session


def user_data(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.label,
        "is_compliance_officer": user.is_compliance_officer,
        "is_admin": user.is_admin,
    }


def do_logout(request: Any, auth_session: AuthSession) -> None:
    """Revoke the login (token and session) and close its sockets."""
    _revoke(auth_session.user, auth_session.pk, client_ip(request))
    if auth_session.session_key:
        SessionStore(session_key=auth_session.session_key).delete()
    logout(request)


def _revoke(user: User, auth_session_id: int, ip: str | None) -> None:
    with transaction.atomic():
        updated = AuthSession.objects.filter(
            pk=auth_session_id, user_id=user.pk, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if updated:
            record(
                "auth.logout",
                actor=user,
                object_type="auth_session",
                object_id=auth_session_id,
                ip=ip,
            )
            close_session_sockets(auth_session_id, "signed_out")


def resolve_token(token: str) -> AuthSession | None:
    """The live login behind a bearer token, with its user, or None (an idle one too)."""
    if not token or len(token) > 200:
        return None
    return admit(
        AuthSession.objects.select_related("user")
        .filter(
            token_hash=hash_token(token),
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            user__is_active=True,
        )
        .first()
    )


def resolve_session(auth_session_id: Any, session_key: str | None) -> AuthSession | None:
    """The live login a browser session points to, or None (revoked, expired, forged)."""
    if not isinstance(auth_session_id, int) or not session_key:
        return None
    return admit(
        AuthSession.objects.select_related("user")
        .filter(
            pk=auth_session_id,
            session_key=session_key,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            user__is_active=True,
        )
        .first()
    )


@dataclass(frozen=True)
class SocketAuth:
    """A live login as a socket keeps it: who opened it, with which login, until when."""

    user: User
    session_id: int
    expires_at: datetime


def resolve_socket_auth(
    token: str | None, auth_session_id: Any, session_key: str | None
) -> SocketAuth | None:
    """The live login a socket's handshake presents: its bearer token if it sent one,
    else its browser session; None for neither."""
    if token is not None:
        auth_session = resolve_token(token)
    else:
        auth_session = resolve_session(auth_session_id, session_key)
    if auth_session is None:
        return None
    return SocketAuth(auth_session.user, auth_session.pk, auth_session.expires_at)
