"""Failed sign-ins and lockouts go to the audit trail, from every path."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from audit.actions import record


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_login_failed, dispatch_uid="rounds-audit-login-failed")
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the username is kept; Django has already masked the password.
    record(
        "auth.login_failed",
        object_type="username",
        object_id=str(credentials.get("username", ""))[:64],
        ip=_ip(request),
    )


@receiver(user_locked_out, dispatch_uid="rounds-audit-locked-out")
def audit_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    record(
        "auth.locked_out", object_type="username", object_id=str(username or "")[:64], ip=ip_address
    )
