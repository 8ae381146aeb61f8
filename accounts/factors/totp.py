"""An authenticator app's six-digit codes (RFC 6238, through pyotp).

A code is accepted for the time step before, at or after the server's (a phone's
clock a little off), and each step once: the step is stored with a conditional
update, so a code seen over a shoulder, or sent twice at once, signs in only once.
"""

import hmac
import re
from datetime import datetime

import pyotp
import segno
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import TotpDevice, User
from audit.actions import record
from core.errors import N_, Conflict

CODE = re.compile(r"\d{6}")


class TotpAlreadySet(Conflict):
    default_message = N_(
        "An authenticator app is already set up: remove it first to set up another."
    )


def matching_step(secret: str, code: str, after_step: int, at: datetime) -> int | None:
    """The time step `code` is right for, later than `after_step`, or None."""
    code = code.replace(" ", "")
    if not CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(at)
    for step in (now - 1, now, now + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def provisioning(user: User, secret: str) -> dict[str, str]:
    """What the app is set up with: the secret typed in, or its QR code scanned."""
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=user.username, issuer_name=settings.ROUNDS_SIGN_IN_NAME
    )
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr}


def do_begin_totp(user: User) -> dict[str, str]:
    """A new secret for the user's app, unconfirmed until a code from it is typed."""
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed_at is not None:
            raise TotpAlreadySet()
        secret = pyotp.random_base32()
        TotpDevice.objects.update_or_create(
            user=user, defaults={"secret": secret, "confirmed_at": None, "last_step": 0}
        )
    return provisioning(user, secret)


def check_code(user: User, code: str, *, confirmed: bool = True) -> bool:
    """Whether `code` is right for the user's app, using up its time step if so."""
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=not confirmed).first()
    if device is None:
        return False
    step = matching_step(device.secret, code, device.last_step, timezone.now())
    if step is None:
        return False
    # Two requests with one code: only one moves the step forward.
    return bool(TotpDevice.objects.filter(pk=device.pk, last_step__lt=step).update(last_step=step))


def do_confirm_totp(user: User, code: str, ip: str | None) -> bool:
    """Confirm the app with its first code; False when the code is wrong."""
    if not check_code(user, code, confirmed=False):
        return False
    with transaction.atomic():
        TotpDevice.objects.filter(user=user).update(confirmed_at=timezone.now())
        record("auth.totp_added", actor=user, object_type="user", object_id=user.pk, ip=ip)
    return True


def do_remove_totp(user: User, ip: str | None) -> bool:
    with transaction.atomic():
        removed, _ = TotpDevice.objects.filter(user=user).delete()
        if removed:
            record("auth.totp_removed", actor=user, object_type="user", object_id=user.pk, ip=ip)
    return bool(removed)
