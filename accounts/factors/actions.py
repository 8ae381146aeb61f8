"""Finishing a sign-in with a second factor, and a user's own factors managed.

Every sign-in path ends in `accounts.actions.finish_login`; every wrong code or
passkey on the way is counted by django-axes (signin.refuse). Removing a factor
or making new backup codes asks for the password again, so a browser left signed
in is not enough to take a doctor's second factor away.
"""

from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest

from accounts.actions import InvalidCredentials, client_ip, finish_login
from accounts.factors import backup_codes, passkeys, policy, signin, totp
from accounts.lockout import LockedOut, lockout_data
from accounts.models import BackupCode, Passkey, SignInStep, TotpDevice, User
from audit.actions import record
from core.errors import N_, Conflict, NotFound
from rooms import access

SECOND_FACTOR = {SignInStep.Kind.SECOND_FACTOR}
ENROL = {SignInStep.Kind.ENROL}


class LastFactorRequired(Conflict):
    default_message = N_(
        "Your role requires a second factor: add another one before removing this one."
    )


class NoFactorYet(Conflict):
    default_message = N_("Set up a passkey or an authenticator app first.")


# --- Finishing a sign-in ----------------------------------------------------------


def do_totp_sign_in(request: HttpRequest, pending: str, code: str) -> dict[str, Any]:
    step, user = signin.open_user_step(pending, SECOND_FACTOR)
    signin.check_not_locked(request, user.username)
    if not totp.check_code(user, code):
        signin.refuse(request, user.username, policy.TOTP)
    signin.close_step(step)
    return finish_login(request, user, step.device_name, policy.TOTP)


def do_backup_code_sign_in(request: HttpRequest, pending: str, code: str) -> dict[str, Any]:
    step, user = signin.open_user_step(pending, SECOND_FACTOR)
    signin.check_not_locked(request, user.username)
    if not backup_codes.use_code(user, code):
        signin.refuse(request, user.username, policy.BACKUP_CODE)
    signin.close_step(step)
    record(
        "auth.backup_code_used",
        actor=user,
        object_type="user",
        object_id=user.pk,
        data={"left": backup_codes.codes_left(user)},
        ip=client_ip(request),
    )
    return finish_login(request, user, step.device_name, policy.BACKUP_CODE)


def do_passkey_options(request: HttpRequest, pending: str | None) -> dict[str, Any]:
    """A challenge for a passkey: after the password (`pending`), or instead of it."""
    if pending is not None:
        step, ceremony = signin.open_step(pending, SECOND_FACTOR), pending
    else:
        ceremony, step = signin.new_step(SignInStep.Kind.PASSKEY)
    return {"ceremony": ceremony, "options": passkeys.authentication_options(request, step)}


def do_passkey_sign_in(
    request: HttpRequest, ceremony: str, credential: dict[str, Any], device: str | None
) -> dict[str, Any]:
    step = signin.open_step(ceremony, {SignInStep.Kind.PASSKEY, SignInStep.Kind.SECOND_FACTOR})
    if step.kind == SignInStep.Kind.PASSKEY and step.user is not None:
        raise signin.SignInExpired()  # a registration's challenge, not a sign-in's
    user = passkeys.check_assertion(request, step, credential)
    signin.close_step(step)
    return finish_login(request, user, device or step.device_name, policy.PASSKEY)


# --- Setting up a first factor to finish a sign-in (the institution requires one) ---


def do_enrol_totp(pending: str) -> dict[str, str]:
    _, user = signin.open_user_step(pending, ENROL)
    return totp.do_begin_totp(user)


def do_enrol_totp_confirm(request: HttpRequest, pending: str, code: str) -> dict[str, Any]:
    step, user = signin.open_user_step(pending, ENROL)
    signin.check_not_locked(request, user.username)
    if not totp.do_confirm_totp(user, code, client_ip(request)):
        signin.refuse(request, user.username, policy.TOTP)
    signin.close_step(step)
    codes = backup_codes.codes_for_first_factor(user, client_ip(request))
    return {**finish_login(request, user, step.device_name, policy.TOTP), "backup_codes": codes}


def do_enrol_passkey_options(request: HttpRequest, pending: str) -> dict[str, Any]:
    step, user = signin.open_user_step(pending, ENROL)
    return {"ceremony": pending, "options": passkeys.registration_options(request, user, step)}


def do_enrol_passkey(
    request: HttpRequest, pending: str, credential: dict[str, Any], name: str
) -> dict[str, Any]:
    step, user = signin.open_user_step(pending, ENROL)
    passkeys.do_register(user, step, credential, name, client_ip(request))
    signin.close_step(step)
    codes = backup_codes.codes_for_first_factor(user, client_ip(request))
    return {**finish_login(request, user, step.device_name, policy.PASSKEY), "backup_codes": codes}


# --- A signed-in user's own factors ------------------------------------------------


def factors_status(user: User) -> dict[str, Any]:
    return {
        "required": policy.second_factor_required(user),
        "totp": policy.has_totp(user),
        "passkeys": [
            passkeys.passkey_card(p) for p in Passkey.objects.filter(user=user).order_by("pk")
        ],
        "backup_codes_left": backup_codes.codes_left(user),
    }


def do_confirm_totp(request: HttpRequest, user: User, code: str) -> dict[str, Any]:
    if not totp.do_confirm_totp(user, code, client_ip(request)):
        raise signin.InvalidSecondFactor()
    return {"backup_codes": backup_codes.codes_for_first_factor(user, client_ip(request))}


def do_passkey_registration(request: HttpRequest, user: User) -> dict[str, Any]:
    ceremony, step = signin.new_step(SignInStep.Kind.PASSKEY, user)
    return {"ceremony": ceremony, "options": passkeys.registration_options(request, user, step)}


def do_add_passkey(
    request: HttpRequest, user: User, ceremony: str, credential: dict[str, Any], name: str
) -> dict[str, Any]:
    step = signin.open_step(ceremony, {SignInStep.Kind.PASSKEY}, user=user)
    passkey = passkeys.do_register(user, step, credential, name, client_ip(request))
    signin.close_step(step)
    return {
        "passkey": passkeys.passkey_card(passkey),
        "backup_codes": backup_codes.codes_for_first_factor(user, client_ip(request)),
    }


def check_password_again(request: HttpRequest, user: User, password: str) -> None:
    """The password once more before a factor is taken away (counted by axes too)."""
    if authenticate(request=request, username=user.username, password=password[:1024]) is None:
        if getattr(request, "axes_locked_out", False):
            raise LockedOut(data=lockout_data())
        raise InvalidCredentials()


def _check_others_left(user: User, *, totp_goes: bool = False, passkey_goes: int = 0) -> bool:
    """Whether a factor stays after this removal; refused when the role requires one."""
    left = Passkey.objects.filter(user=user).exclude(pk=passkey_goes).exists() or (
        not totp_goes and policy.has_totp(user)
    )
    if not left and policy.second_factor_required(user):
        raise LastFactorRequired()
    return left


def do_remove_totp(request: HttpRequest, user: User, password: str) -> dict[str, Any]:
    check_password_again(request, user, password)
    if not TotpDevice.objects.filter(user=user).exists():
        raise NotFound()
    with transaction.atomic():
        if not _check_others_left(user, totp_goes=True):
            backup_codes.drop_codes(user)
        totp.do_remove_totp(user, client_ip(request))
    return factors_status(user)


def do_remove_passkey(
    request: HttpRequest, user: User, passkey_id: int, password: str
) -> dict[str, Any]:
    check_password_again(request, user, password)
    if not Passkey.objects.filter(pk=passkey_id, user=user).exists():
        raise NotFound()
    with transaction.atomic():
        if not _check_others_left(user, passkey_goes=passkey_id):
            backup_codes.drop_codes(user)
        passkeys.do_remove(user, passkey_id, client_ip(request))
    return factors_status(user)


def do_new_backup_codes(request: HttpRequest, user: User, password: str) -> dict[str, Any]:
    check_password_again(request, user, password)
    if not (Passkey.objects.filter(user=user).exists() or policy.has_totp(user)):
        raise NoFactorYet()
    return {"backup_codes": backup_codes.do_replace_codes(user, client_ip(request))}


def check_reset_factors(actor: User, user_id: int, ip: str | None) -> dict[str, Any]:
    """An administrator clears a user's second factors (phone and codes both lost); the
    user sets one up again at their next sign-in if their role requires it."""
    access.check_admin(actor)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound()
        removed = {
            "passkeys": Passkey.objects.filter(user=user).delete()[0],
            "totp": TotpDevice.objects.filter(user=user).delete()[0],
            "backup_codes": BackupCode.objects.filter(user=user).delete()[0],
        }
        record(
            "auth.second_factor_reset",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            data=removed,
            ip=ip,
        )
    return factors_status(user)
