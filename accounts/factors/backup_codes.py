"""One-time backup codes: a lost phone must not lock a doctor out until IT wakes up.

Ten codes of twelve characters (60 bits each) from Crockford's base32, shown once;
only their SHA-256 is kept (a code is random, so no slow hash is needed). Typing
is forgiving: case, spaces and dashes do not count, and O, I and L read as 0, 1, 1.
"""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from accounts.models import BackupCode, User
from audit.actions import record

COUNT = 10
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 12
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def normalize(code: str) -> str:
    return "".join(c for c in code.upper() if c not in " -").translate(_READS_AS)


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def do_replace_codes(user: User, ip: str | None) -> list[str]:
    """A new set of codes for the user; the old set stops working."""
    codes = [new_code() for _ in range(COUNT)]
    with transaction.atomic():
        BackupCode.objects.filter(user=user).delete()
        BackupCode.objects.bulk_create(BackupCode(user=user, code_hash=code_hash(c)) for c in codes)
        record(
            "auth.backup_codes_replaced",
            actor=user,
            object_type="user",
            object_id=user.pk,
            data={"codes": COUNT},
            ip=ip,
        )
    return codes


def codes_for_first_factor(user: User, ip: str | None) -> list[str]:
    """Backup codes when the user has none left: their first second factor came."""
    if BackupCode.objects.filter(user=user, used_at__isnull=True).exists():
        return []
    return do_replace_codes(user, ip)


def use_code(user: User, code: str) -> bool:
    """Whether `code` is one of the user's unused codes, using it up if so."""
    if len(code) > 40:
        return False
    used = BackupCode.objects.filter(
        user=user, code_hash=code_hash(code), used_at__isnull=True
    ).update(used_at=timezone.now())
    return bool(used)


def codes_left(user: User) -> int:
    return BackupCode.objects.filter(user=user, used_at__isnull=True).count()


def drop_codes(user: User) -> None:
    """The last factor went: codes that stood in for it would be a factor of their own."""
    BackupCode.objects.filter(user=user).delete()
