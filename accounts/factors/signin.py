"""A sign-in between its steps, and django-axes counting the second factor's failures.

The password opens a step (`second_factor` or `enrol`), named by a one-use token
the client sends back with the code or the passkey; nothing is signed in before
the step is finished. A wrong code counts as a failed sign-in of that username
from that address, exactly as a wrong password does, so five wrong codes lock the
(username, address) for the cool-off, whichever step they were typed at.
"""

import secrets
from collections.abc import Collection
from datetime import timedelta
from typing import Any, NoReturn

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django.utils import timezone

from accounts.factors import policy
from accounts.lockout import LockedOut, lockout_data
from accounts.models import SignInStep, User, hash_token
from core.errors import N_, ErrorCode, RoundsError

STEP_LIFETIME = timedelta(minutes=5)
# The username failures are counted under when the passkey presented is nobody's:
# axes then locks that address out of unknown-passkey attempts.
UNKNOWN_PASSKEY = "(unknown passkey)"


class SecondFactorRequired(RoundsError):
    code = ErrorCode.SECOND_FACTOR_REQUIRED
    default_message = N_("Finish signing in with your second factor.")


class SecondFactorSetupRequired(RoundsError):
    code = ErrorCode.SECOND_FACTOR_SETUP_REQUIRED
    default_message = N_(
        "Your role requires a second factor: set up a passkey or an authenticator app "
        "to finish signing in."
    )


class InvalidSecondFactor(RoundsError):
    code = ErrorCode.INVALID_SECOND_FACTOR
    default_message = N_("That code or passkey is not right.")


class SignInExpired(RoundsError):
    code = ErrorCode.SIGN_IN_EXPIRED
    default_message = N_("This sign-in has expired or was finished: sign in again.")


def new_step(kind: str, user: User | None = None, device: str = "") -> tuple[str, SignInStep]:
    """A step and its token; steps past their five minutes are cleared on the way."""
    now = timezone.now()
    SignInStep.objects.filter(expires_at__lt=now).delete()
    token = "rsi_" + secrets.token_urlsafe(32)
    step = SignInStep.objects.create(
        token_hash=hash_token(token),
        kind=kind,
        user=user,
        device_name=device,
        expires_at=now + STEP_LIFETIME,
    )
    return token, step


def open_step(token: Any, kinds: Collection[str], user: User | None = None) -> SignInStep:
    """The live step `token` names, of one of `kinds` (and of `user`, when given)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        raise SignInExpired()
    step = (
        SignInStep.objects.select_related("user")
        .filter(token_hash=hash_token(token), kind__in=kinds, expires_at__gt=timezone.now())
        .first()
    )
    if step is None or (user is not None and step.user_id != user.pk):
        raise SignInExpired()
    if step.user is not None and not step.user.is_active:
        raise SignInExpired()
    return step


def open_user_step(token: Any, kinds: Collection[str]) -> tuple[SignInStep, User]:
    """A step that follows a right password, and whose password it was."""
    step = open_step(token, kinds)
    if step.user is None:
        raise SignInExpired()
    return step, step.user


def close_step(step: SignInStep) -> None:
    """Use the step up; a concurrent request that finished it first wins."""
    deleted, _ = SignInStep.objects.filter(pk=step.pk).delete()
    if not deleted:
        raise SignInExpired()


def second_step(user: User, device: str) -> RoundsError | None:
    """After a right password: what is still needed before the login opens, if anything."""
    methods = policy.enrolled_methods(user)
    if methods:
        token, step = new_step(SignInStep.Kind.SECOND_FACTOR, user, device)
        return SecondFactorRequired(data=step_data(token, step, methods))
    if policy.second_factor_required(user):
        token, step = new_step(SignInStep.Kind.ENROL, user, device)
        return SecondFactorSetupRequired(data=step_data(token, step, [policy.PASSKEY, policy.TOTP]))
    return None


def step_data(token: str, step: SignInStep, methods: list[str]) -> dict[str, Any]:
    return {"pending": token, "methods": methods, "expires_at": step.expires_at.isoformat()}


def check_not_locked(request: HttpRequest, username: str) -> None:
    """Refuse a locked (username, address) before any code or passkey is looked at."""
    if AxesProxyHandler.is_locked(request, {"username": username}):
        raise LockedOut(data=lockout_data())


def refuse(request: HttpRequest, username: str, factor: str) -> NoReturn:
    """Count a wrong second factor as a failed sign-in (axes, audit), then refuse it."""
    user_login_failed.send(
        sender=__name__, credentials={"username": username, "factor": factor}, request=request
    )
    if getattr(request, "axes_locked_out", False):
        raise LockedOut(data=lockout_data())
    raise InvalidSecondFactor()
