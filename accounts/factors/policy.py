"""Who must sign in with a second factor, and which factors a user has."""

from django.conf import settings

from accounts.models import BackupCode, Passkey, TotpDevice, User
from rooms.models import Membership, Role

PASSKEY = "passkey"
TOTP = "totp"
BACKUP_CODE = "backup_code"


def is_privileged(user: User) -> bool:
    """A head (of any department), a compliance officer or an administrator: the
    accounts that admit people, read everything under a case, or appoint heads."""
    return (
        user.is_admin
        or user.is_compliance_officer
        or Membership.objects.active().filter(user=user, role=Role.HEAD).exists()
    )


def second_factor_required(user: User) -> bool:
    mode = settings.ROUNDS_SECOND_FACTOR
    return mode == "everyone" or (mode == "privileged" and is_privileged(user))


def has_totp(user: User) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def enrolled_methods(user: User) -> list[str]:
    """The factors the user can finish a sign-in with, the strongest first."""
    methods = []
    if Passkey.objects.filter(user=user).exists():
        methods.append(PASSKEY)
    if has_totp(user):
        methods.append(TOTP)
    if methods and BackupCode.objects.filter(user=user, used_at__isnull=True).exists():
        methods.append(BACKUP_CODE)
    return methods
