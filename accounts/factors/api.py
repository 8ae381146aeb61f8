"""The second factor over HTTP: finishing a sign-in, and a user's own factors.

The `/login/…` routes take the step's token instead of a session (nothing is
signed in yet) and refuse other sites' requests as the password login does.
"""

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from accounts.actions import client_ip
from accounts.devices import MAX_DEVICE_NAME
from accounts.factors import actions, passkeys, totp
from core.api_schemas.accounts import (
    BackupCodes,
    LoginBody,
    LoginWithBackupCodes,
    PasskeyAdded,
    PasskeyCeremony,
    SecondFactors,
    TotpSetup,
)
from core.api_schemas.common import answers
from rounds.http import AuthedRequest, check_first_party

router = Router(tags=["auth"])

Token = Field(max_length=200)
Code = Field(max_length=40)
Credential = dict[str, Any]


class Pending(Schema):
    pending: str = Token


class CodeIn(Pending):
    code: str = Code


class PasskeyOptionsIn(Schema):
    # After a password: the step's token. Without: a sign-in with the passkey alone.
    pending: str | None = Field(default=None, max_length=200)


class PasskeySignInIn(Schema):
    ceremony: str = Token
    credential: Credential
    device: str | None = Field(default=None, max_length=MAX_DEVICE_NAME)


class EnrolPasskeyIn(Pending):
    credential: Credential
    name: str = Field(default="", max_length=passkeys.MAX_NAME)


class ConfirmIn(Schema):
    code: str = Code


class AddPasskeyIn(Schema):
    ceremony: str = Token
    credential: Credential
    name: str = Field(default="", max_length=passkeys.MAX_NAME)


class PasswordIn(Schema):
    password: str = Field(max_length=1024)


# --- Finishing a sign-in -----------------------------------------------------------


@router.post("/login/totp", auth=None, response=answers(LoginBody))
def login_totp(request: HttpRequest, body: CodeIn) -> dict[str, Any]:
    """The authenticator app's code after the password."""
    check_first_party(request)
    return actions.do_totp_sign_in(request, body.pending, body.code)


@router.post("/login/backup-code", auth=None, response=answers(LoginBody))
def login_backup_code(request: HttpRequest, body: CodeIn) -> dict[str, Any]:
    """A one-time backup code after the password, when the phone is not at hand."""
    check_first_party(request)
    return actions.do_backup_code_sign_in(request, body.pending, body.code)


@router.post("/login/passkey/options", auth=None, response=answers(PasskeyCeremony))
def login_passkey_options(request: HttpRequest, body: PasskeyOptionsIn) -> dict[str, Any]:
    check_first_party(request)
    return actions.do_passkey_options(request, body.pending)


@router.post("/login/passkey", auth=None, response=answers(LoginBody))
def login_passkey(request: HttpRequest, body: PasskeySignInIn) -> dict[str, Any]:
    """A passkey's answer to the ceremony's challenge: after the password, or alone."""
    check_first_party(request)
    return actions.do_passkey_sign_in(request, body.ceremony, body.credential, body.device)


@router.post("/login/enrol/totp", auth=None, response=answers(TotpSetup))
def enrol_totp(request: HttpRequest, body: Pending) -> dict[str, str]:
    """A first authenticator app, which the user's role requires to finish signing in."""
    check_first_party(request)
    return actions.do_enrol_totp(body.pending)


@router.post("/login/enrol/totp/confirm", auth=None, response=answers(LoginWithBackupCodes))
def enrol_totp_confirm(request: HttpRequest, body: CodeIn) -> dict[str, Any]:
    check_first_party(request)
    return actions.do_enrol_totp_confirm(request, body.pending, body.code)


@router.post("/login/enrol/passkey/options", auth=None, response=answers(PasskeyCeremony))
def enrol_passkey_options(request: HttpRequest, body: Pending) -> dict[str, Any]:
    check_first_party(request)
    return actions.do_enrol_passkey_options(request, body.pending)


@router.post("/login/enrol/passkey", auth=None, response=answers(LoginWithBackupCodes))
def enrol_passkey(request: HttpRequest, body: EnrolPasskeyIn) -> dict[str, Any]:
    check_first_party(request)
    return actions.do_enrol_passkey(request, body.pending, body.credential, body.name)


# --- A signed-in user's own factors --------------------------------------------------


@router.get("/second-factor", response=answers(SecondFactors))
def second_factors(request: AuthedRequest) -> dict[str, Any]:
    return actions.factors_status(request.user)


@router.post("/second-factor/totp", response=answers(TotpSetup))
def begin_totp(request: AuthedRequest) -> dict[str, str]:
    return totp.do_begin_totp(request.user)


@router.post("/second-factor/totp/confirm", response=answers(BackupCodes))
def confirm_totp(request: AuthedRequest, body: ConfirmIn) -> dict[str, Any]:
    return actions.do_confirm_totp(request, request.user, body.code)


@router.post("/second-factor/totp/remove", response=answers(SecondFactors))
def remove_totp(request: AuthedRequest, body: PasswordIn) -> dict[str, Any]:
    return actions.do_remove_totp(request, request.user, body.password)


@router.post("/second-factor/passkeys/options", response=answers(PasskeyCeremony))
def passkey_options(request: AuthedRequest) -> dict[str, Any]:
    return actions.do_passkey_registration(request, request.user)


@router.post("/second-factor/passkeys", response=answers(PasskeyAdded))
def add_passkey(request: AuthedRequest, body: AddPasskeyIn) -> dict[str, Any]:
    return actions.do_add_passkey(request, request.user, body.ceremony, body.credential, body.name)


@router.post("/second-factor/passkeys/{passkey_id}/remove", response=answers(SecondFactors))
def remove_passkey(request: AuthedRequest, passkey_id: int, body: PasswordIn) -> dict[str, Any]:
    return actions.do_remove_passkey(request, request.user, passkey_id, body.password)


@router.post("/second-factor/backup-codes", response=answers(BackupCodes))
def new_backup_codes(request: AuthedRequest, body: PasswordIn) -> dict[str, Any]:
    return actions.do_new_backup_codes(request, request.user, body.password)


@router.post("/users/{user_id}/second-factor/reset", response=answers(SecondFactors))
def reset_second_factor(request: AuthedRequest, user_id: int) -> dict[str, Any]:
    """An administrator clears a user's second factors (phone and backup codes lost)."""
    return actions.check_reset_factors(request.user, user_id, client_ip(request))
