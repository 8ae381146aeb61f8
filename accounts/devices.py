"""Signed-in devices: one per live login (AuthSession), listed and revoked.

Revoking a device is signing it out from elsewhere: its token and browser
session stop working, its sockets close on every process, its push
subscriptions go, and the audit trail says who cut off whose device.
"""

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import AuthSession, User
from audit.actions import record
from chat.events import close_session_sockets
from core.errors import NotFound
from rooms import access

MAX_DEVICE_NAME = 60
# Last seen is refreshed no more often: one write a minute per login, not one a request.
SEEN_EVERY = timedelta(seconds=60)

# The first match names it: Edge and Opera say "Chrome" too, Chrome says "Safari".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_PROGRAMS = re.compile(r"python|httpx|aiohttp|requests|rounds", re.IGNORECASE)


# Sent in the revoking transaction, once a login of a device is revoked: `auth_session`,
# `by` (the user who revoked it, or None for the idle timeout).
device_revoked = Signal()


def device_name(given: str | None, user_agent: str) -> str:
    """The name the user gave the device at sign-in, else one read from its User-Agent."""
    if given and given.strip():
        return given.strip()[:MAX_DEVICE_NAME]
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or ""
    if _PROGRAMS.search(user_agent):
        return "Python client"
    return "Unknown device"


def idle_since() -> Any:
    """Logins last seen before this are idle: they must sign in again."""
    return timezone.now() - timedelta(seconds=settings.ROUNDS_DEVICE_IDLE_SECONDS)


def live_devices(user: User) -> Any:
    return AuthSession.objects.filter(
        user=user,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
        last_seen_at__gt=idle_since(),
    )


def device_data(auth_session: AuthSession, current: AuthSession) -> dict[str, Any]:
    return {
        "id": auth_session.pk,
        "device_name": auth_session.device_name,
        "created_at": auth_session.created_at.isoformat(),
        "last_seen_at": auth_session.last_seen_at.isoformat(),
        "ip": auth_session.ip,
        "current": auth_session.pk == current.pk,
    }


def list_devices(current: AuthSession) -> list[dict[str, Any]]:
    """The caller's live logins, newest first; `current` is the one asking."""
    rows = live_devices(current.user).order_by("-created_at", "-pk")
    return [device_data(row, current) for row in rows]


def check_revoke_device(current: AuthSession, device_id: int, ip: str | None) -> dict[str, Any]:
    """Revoke one of the caller's own devices; another user's is not found, as an unknown one."""
    with transaction.atomic():
        device = live_devices(current.user).select_for_update().filter(pk=device_id).first()
        if device is None:
            raise NotFound()
        do_revoke_device(device, by=current.user, reason="revoked", ip=ip)
    return {"revoked": 1}


def check_revoke_all(actor: User, user_id: int, ip: str | None) -> dict[str, Any]:
    """An administrator signs a user out of every device (a lost phone, a leaver)."""
    access.check_admin(actor)
    with transaction.atomic():
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise NotFound()
        devices = list(
            AuthSession.objects.select_for_update().filter(user=user, revoked_at__isnull=True)
        )
        for device in devices:
            do_revoke_device(device, by=actor, reason="revoked_by_admin", ip=ip, audit=False)
        record(
            "device.revoked_all",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            data={"count": len(devices)},
            ip=ip,
        )
    return {"revoked": len(devices)}


def do_revoke_device(
    device: AuthSession, *, by: User | None, reason: str, ip: str | None, audit: bool = True
) -> None:
    """Revoke the login, drop its browser session and push subscriptions, and close its
    sockets on every process after commit. Assumes the caller may (already authorised);
    a login already revoked is left as it is."""
    with transaction.atomic():
        updated = AuthSession.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not updated:
            return
        if audit:
            record(
                "device.revoked",
                actor=by,
                object_type="auth_session",
                object_id=device.pk,
                data={"user": device.user_id, "reason": reason},
                ip=ip,
            )
        # Its push subscriptions go (push/signals.py: push sits above accounts).
        device_revoked.send(sender=AuthSession, auth_session=device, by=by)
        close_session_sockets(device.pk, reason)
        if device.session_key:
            SessionStore(session_key=device.session_key).delete()


def admit(auth_session: AuthSession | None) -> AuthSession | None:
    """The login if it is still in use, its last-seen time refreshed (at most once a
    minute); None, and the login revoked, when it was idle too long."""
    if auth_session is None:
        return None
    now = timezone.now()
    if auth_session.last_seen_at <= idle_since():
        do_revoke_device(auth_session, by=None, reason="idle", ip=None)
        return None
    if auth_session.last_seen_at <= now - SEEN_EVERY:
        AuthSession.objects.filter(pk=auth_session.pk).update(last_seen_at=now)
        auth_session.last_seen_at = now
    return auth_session
