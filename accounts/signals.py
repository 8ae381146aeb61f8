"""Sign-in events from every path (API, admin site) go to the audit trail,
and a deactivated account loses its logins and sockets at once."""

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import AuthSession, User
from audit.actions import record
from chat.events import close_user_sockets


def _ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in, dispatch_uid="rounds-audit-login")
def audit_login(sender: object, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """Sign-ins that do not go through the API login (the admin site)."""
    if getattr(request, "rounds_audits_login", False):
        return
    path = getattr(request, "path", "")[:100]
    record(
        "auth.login",
        actor=user,
        object_type="user",
        object_id=user.pk,
        data={"path": path},
        ip=_ip(request),
    )


@receiver(user_login_failed, dispatch_uid="rounds-audit-login-failed")
def audit_login_failed(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the username is kept; Django has already masked the password. A wrong second
    # factor names which (accounts/factors/signin.py).
    factor = credentials.get("factor")
    record(
        "auth.login_failed",
        object_type="username",
        object_id=str(credentials.get("username", ""))[:64],
        data={"factor": factor} if factor else None,
        ip=_ip(request),
    )


@receiver(user_locked_out, dispatch_uid="rounds-audit-locked-out")
def audit_locked_out(
    sender: object,
    request: HttpRequest | None = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    record(
        "auth.locked_out",
        object_type="username",
        object_id=str(username or "")[:64],
        ip=ip_address,
    )


@receiver(post_save, sender=User, dispatch_uid="rounds-deactivation")
def revoke_deactivated(sender: object, instance: User, **kwargs: Any) -> None:
    """An account switched off by an administrator is signed out everywhere, now."""
    if instance.is_active:
        return
    with transaction.atomic():
        revoked = AuthSession.objects.filter(user=instance, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            record(
                "auth.deactivated_signed_out",
                object_type="user",
                object_id=instance.pk,
                data={"sessions": revoked},
            )
        close_user_sockets(instance.pk, "deactivated")
