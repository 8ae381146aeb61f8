"""Passkeys (WebAuthn, through py_webauthn): registered, and signed in with.

A passkey belongs to a relying party, a domain: the host of the allowed origin the
browser is on, or `ROUNDS_WEBAUTHN_RP_ID` (a parent domain, for a deployment with
several host names). User verification is required on both ceremonies, so a
passkey is two factors in one (the device, and the face, finger or PIN that
unlocks it) and signs in alone. A challenge is used once; the signature counter
going backwards (a cloned authenticator) is refused by py_webauthn.
"""

import base64
import ipaddress
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from accounts.factors import signin
from accounts.models import Passkey, SignInStep, User
from audit.actions import record
from core.errors import N_, ErrorCode, InvalidRequest, NotFound, RoundsError

MAX_PASSKEYS = 20
MAX_NAME = 60


class PasskeysUnavailable(RoundsError):
    code = ErrorCode.PASSKEYS_UNAVAILABLE
    default_message = N_(
        "Passkeys work only when Rounds is opened by its name (such as "
        "rounds.hospital.example or localhost), not by an address."
    )


class PasskeyNotChecked(InvalidRequest):
    default_message = N_("This passkey could not be checked: try again, or use another.")


class TooManyPasskeys(InvalidRequest):
    default_message = N_("You have %(limit)s passkeys: remove one you no longer use first.")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _host(origin: str) -> str:
    return urlsplit(origin).hostname or ""


def _belongs(host: str, rp_id: str) -> bool:
    return host == rp_id or host.endswith("." + rp_id)


def _is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return bool(host)
    return False


def relying_party(request: HttpRequest) -> str:
    """The relying party id for a ceremony asked from this request's origin.

    A browser names its origin; a program (the Python client with a security key)
    names none, and gets the deployment's: ROUNDS_WEBAUTHN_RP_ID, else the first
    allowed origin's name. The origin in the authenticator's answer is checked anyway.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        names = [_host(o) for o in settings.ROUNDS_ALLOWED_ORIGINS if _is_name(_host(o))]
        if settings.ROUNDS_WEBAUTHN_RP_ID or names:
            return str(settings.ROUNDS_WEBAUTHN_RP_ID or names[0])
        raise PasskeysUnavailable()
    host = _host(origin)
    rp_id = settings.ROUNDS_WEBAUTHN_RP_ID or host
    if origin in settings.ROUNDS_ALLOWED_ORIGINS and _is_name(host) and _belongs(host, rp_id):
        return rp_id
    raise PasskeysUnavailable()


def origins_for(rp_id: str) -> list[str]:
    """The allowed origins a passkey of `rp_id` may be used from."""
    return [o for o in settings.ROUNDS_ALLOWED_ORIGINS if _belongs(_host(o), rp_id)]


def _set_challenge(step: SignInStep, rp_id: str) -> bytes:
    challenge = secrets.token_bytes(32)
    step.challenge, step.rp_id = b64url(challenge), rp_id
    step.save(update_fields=["challenge", "rp_id"])
    return challenge


def _take_challenge(step: SignInStep) -> bytes:
    """The step's challenge, cleared so that no second answer is checked against it."""
    if not step.challenge or not SignInStep.objects.filter(
        pk=step.pk, challenge=step.challenge
    ).update(challenge=""):
        raise signin.SignInExpired()
    return unb64url(step.challenge)


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=unb64url(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in p.transports if t in _TRANSPORTS],
        )
        for p in Passkey.objects.filter(user=user)
    ]


_TRANSPORTS = {t.value for t in AuthenticatorTransport}


# --- Registration ---------------------------------------------------------------


def registration_options(request: HttpRequest, user: User, step: SignInStep) -> dict[str, Any]:
    """What the browser's `navigator.credentials.create` is called with."""
    if Passkey.objects.filter(user=user).count() >= MAX_PASSKEYS:
        raise TooManyPasskeys(params={"limit": MAX_PASSKEYS})
    rp_id = relying_party(request)
    challenge = _set_challenge(step, rp_id)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=settings.ROUNDS_SIGN_IN_NAME,
        user_id=f"rounds-sign-in/{user.pk}".encode(),
        user_name=user.username,
        user_display_name=user.label,
        challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(user),
    )
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return parsed


def do_register(
    user: User, step: SignInStep, credential: dict[str, Any], name: str, ip: str | None
) -> Passkey:
    """Check the new passkey against the step's challenge and keep its public key."""
    challenge = _take_challenge(step)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=step.rp_id,
            expected_origin=origins_for(step.rp_id),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise PasskeyNotChecked() from error
    transports = credential.get("response", {}).get("transports") or []
    with transaction.atomic():
        passkey, created = Passkey.objects.get_or_create(
            credential_id=b64url(verified.credential_id),
            defaults={
                "user": user,
                "public_key": verified.credential_public_key,
                "sign_count": verified.sign_count,
                "name": (name.strip() or "Passkey")[:MAX_NAME],
                "transports": [t for t in transports if t in _TRANSPORTS],
                "backed_up": verified.credential_backed_up,
            },
        )
        if not created:
            raise PasskeyNotChecked()
        record(
            "auth.passkey_added",
            actor=user,
            object_type="passkey",
            object_id=passkey.pk,
            data={"backed_up": passkey.backed_up},
            ip=ip,
        )
    return passkey


# --- Signing in -----------------------------------------------------------------


def authentication_options(request: HttpRequest, step: SignInStep) -> dict[str, Any]:
    """What `navigator.credentials.get` is called with: the user's passkeys after a
    password, any passkey of this site (discoverable) for a sign-in without one."""
    rp_id = relying_party(request)
    challenge = _set_challenge(step, rp_id)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        allow_credentials=_descriptors(step.user) if step.user else [],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    parsed: dict[str, Any] = json.loads(options_to_json(options))
    return parsed


def check_assertion(request: HttpRequest, step: SignInStep, credential: dict[str, Any]) -> User:
    """The user a passkey's answer to the step's challenge signs in, or a refusal that
    django-axes counts (against the passkey's owner, or this address's unknown ones)."""
    credential_id = credential.get("id")
    passkey = (
        Passkey.objects.select_related("user").filter(credential_id=credential_id).first()
        if isinstance(credential_id, str) and len(credential_id) <= 1400
        else None
    )
    owner = step.user or (passkey.user if passkey else None)
    username = owner.username if owner else signin.UNKNOWN_PASSKEY
    signin.check_not_locked(request, username)
    challenge = _take_challenge(step)
    if passkey is None or owner is None or passkey.user_id != owner.pk or not owner.is_active:
        signin.refuse(request, username, "passkey")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=step.rp_id,
            expected_origin=origins_for(step.rp_id),
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError):
        signin.refuse(request, username, "passkey")
    Passkey.objects.filter(pk=passkey.pk).update(
        sign_count=verified.new_sign_count,
        backed_up=verified.credential_backed_up,
        last_used_at=timezone.now(),
    )
    return passkey.user


def do_remove(user: User, passkey_id: int, ip: str | None) -> None:
    with transaction.atomic():
        removed, _ = Passkey.objects.filter(pk=passkey_id, user=user).delete()
        if not removed:
            raise NotFound()
        record(
            "auth.passkey_removed", actor=user, object_type="passkey", object_id=passkey_id, ip=ip
        )


def passkey_card(passkey: Passkey) -> dict[str, Any]:
    return {
        "id": passkey.pk,
        "name": passkey.name,
        "created_at": passkey.created_at.isoformat(),
        "last_used_at": passkey.last_used_at.isoformat() if passkey.last_used_at else None,
        "backed_up": passkey.backed_up,
    }
