"""The second factor: an authenticator app, backup codes and passkeys, when a user has
them and when the institution requires them (accounts/factors, docs/sign-in.md).

Every wrong code or passkey counts as a failed sign-in for django-axes, nothing is
signed in before the last step, and every step's token is used once.
"""

from datetime import timedelta

import pyotp
import pytest
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import AuthSession, BackupCode, Passkey, SignInStep, TotpDevice
from tests.support import PASSWORD
from tests.support.audit import audit_entries
from tests.support.authenticator import SoftAuthenticator
from tests.support.factors import (
    ORIGIN,
    add_passkey,
    passkey_sign_in,
    password_step,
    pending_of,
    post,
    set_up_app,
    wrong_code,
)

pytestmark = pytest.mark.django_db

LIMIT = 5
PRIVILEGED = override_settings(ROUNDS_SECOND_FACTOR="privileged")
EVERYONE = override_settings(ROUNDS_SECOND_FACTOR="everyone")


def signed_in(username: str) -> Client:
    client = Client()
    assert password_step(client, username).status_code == 200
    return client


def code_step(client: Client, route: str, pending: str, code: str):
    return post(client, f"/api/auth/login/{route}", {"pending": pending, "code": code})


# --- An authenticator app ---------------------------------------------------------------


def test_an_app_once_set_up_is_asked_for_after_the_password(hospital):
    secret, codes = set_up_app(signed_in("surgeon_bob"))
    assert len(codes) == 10 and len(set(codes)) == 10
    client = Client()
    before = AuthSession.objects.count()
    answer = password_step(client, "surgeon_bob")
    assert answer.json()["code"] == "second_factor_required"
    assert answer.json()["data"]["methods"] == ["totp", "backup_code"]
    # Nothing is signed in yet: no login, no session a socket could use.
    assert AuthSession.objects.count() == before
    assert client.get("/api/auth/me").status_code == 401
    done = code_step(client, "totp", pending_of(answer), pyotp.TOTP(secret).now())
    assert done.status_code == 200, done.content
    assert client.get("/api/auth/me").json()["username"] == "surgeon_bob"
    last = audit_entries("auth.login")[-1]
    assert last.data == {"factor": "totp"}


def test_a_code_signs_in_once(hospital):
    secret, _ = set_up_app(signed_in("surgeon_bob"))
    code = pyotp.TOTP(secret).now()
    first = Client()
    assert (
        code_step(first, "totp", pending_of(password_step(first, "surgeon_bob")), code).status_code
        == 200
    )
    second = Client()
    again = code_step(second, "totp", pending_of(password_step(second, "surgeon_bob")), code)
    assert again.status_code == 401
    assert again.json()["code"] == "invalid_second_factor"


def test_a_step_token_is_used_once(hospital):
    secret, codes = set_up_app(signed_in("surgeon_bob"))
    client = Client()
    pending = pending_of(password_step(client, "surgeon_bob"))
    assert code_step(client, "totp", pending, pyotp.TOTP(secret).now()).status_code == 200
    reused = code_step(Client(), "backup-code", pending, codes[0])
    assert reused.json()["code"] == "sign_in_expired"
    assert BackupCode.objects.filter(used_at__isnull=False).count() == 0


def test_an_expired_step_is_refused(hospital):
    secret, _ = set_up_app(signed_in("surgeon_bob"))
    client = Client()
    pending = pending_of(password_step(client, "surgeon_bob"))
    SignInStep.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = code_step(client, "totp", pending, pyotp.TOTP(secret).now())
    assert answer.status_code == 401
    assert answer.json()["code"] == "sign_in_expired"


def test_wrong_codes_lock_the_account_as_wrong_passwords_do(hospital):
    secret, _ = set_up_app(signed_in("surgeon_bob"))
    client = Client()
    pending = pending_of(password_step(client, "surgeon_bob"))
    statuses = [
        code_step(client, "totp", pending, wrong_code(secret)).status_code for _ in range(LIMIT)
    ]
    assert statuses == [401] * (LIMIT - 1) + [429]
    # Locked: the right code is refused too, and so is the password.
    locked = code_step(client, "totp", pending, pyotp.TOTP(secret).now())
    assert locked.status_code == 429 and locked.json()["code"] == "locked_out"
    assert password_step(Client(), "surgeon_bob").status_code == 429
    failures = audit_entries("auth.login_failed", object_id="surgeon_bob")
    assert [e.data for e in failures[:LIMIT]] == [{"factor": "totp"}] * LIMIT


def test_the_app_is_confirmed_only_by_a_right_code(hospital):
    client = signed_in("surgeon_bob")
    setup = post(client, "/api/auth/second-factor/totp").json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/Rounds:surgeon_bob?secret=")
    assert setup["qr_svg"].startswith("data:image/svg+xml")
    wrong = post(
        client, "/api/auth/second-factor/totp/confirm", {"code": wrong_code(setup["secret"])}
    )
    assert wrong.json()["code"] == "invalid_second_factor"
    # Unconfirmed, it is not asked for at sign-in.
    assert password_step(Client(), "surgeon_bob").status_code == 200
    assert TotpDevice.objects.get().confirmed_at is None


def test_a_second_app_needs_the_first_removed(hospital):
    client = signed_in("surgeon_bob")
    set_up_app(client)
    again = post(client, "/api/auth/second-factor/totp")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


# --- Backup codes -------------------------------------------------------------------------


def test_a_backup_code_signs_in_once_and_is_audited(hospital):
    _, codes = set_up_app(signed_in("surgeon_bob"))
    client = Client()
    typed = codes[3].lower().replace("-", " ")  # as read aloud over the phone
    assert (
        code_step(
            client, "backup-code", pending_of(password_step(client, "surgeon_bob")), typed
        ).status_code
        == 200
    )
    used = audit_entries("auth.backup_code_used")
    assert [e.data for e in used] == [{"left": 9}]
    other = Client()
    again = code_step(
        other, "backup-code", pending_of(password_step(other, "surgeon_bob")), codes[3]
    )
    assert again.json()["code"] == "invalid_second_factor"


def test_new_backup_codes_need_the_password_and_replace_the_old(hospital):
    client = signed_in("surgeon_bob")
    _, old = set_up_app(client)
    refused = post(client, "/api/auth/second-factor/backup-codes", {"password": "not-it-at-all"})
    assert refused.json()["code"] == "invalid_credentials"
    fresh = post(client, "/api/auth/second-factor/backup-codes", {"password": PASSWORD}).json()
    assert len(fresh["backup_codes"]) == 10
    other = Client()
    stale = code_step(other, "backup-code", pending_of(password_step(other, "surgeon_bob")), old[0])
    assert stale.json()["code"] == "invalid_second_factor"


def test_no_backup_codes_without_a_factor(hospital):
    answer = post(
        signed_in("surgeon_bob"), "/api/auth/second-factor/backup-codes", {"password": PASSWORD}
    )
    assert answer.status_code == 409
    assert not BackupCode.objects.exists()


# --- Passkeys -------------------------------------------------------------------------------


def test_a_passkey_signs_in_alone(hospital):
    phone = SoftAuthenticator(ORIGIN)
    added = add_passkey(signed_in("surgeon_bob"), phone)
    assert added.status_code == 200, added.content
    assert added.json()["passkey"]["name"] == "Phone"
    assert len(added.json()["backup_codes"]) == 10
    client = Client()
    answer = passkey_sign_in(client, phone)
    assert answer.status_code == 200, answer.content
    assert answer.json()["user"]["username"] == "surgeon_bob"
    assert client.get("/api/auth/me").status_code == 200
    assert audit_entries("auth.login")[-1].data == {"factor": "passkey"}
    assert Passkey.objects.get().sign_count == 1


def test_a_passkey_finishes_a_password_sign_in(hospital):
    phone = SoftAuthenticator(ORIGIN)
    add_passkey(signed_in("surgeon_bob"), phone)
    client = Client()
    answer = password_step(client, "surgeon_bob")
    assert answer.json()["data"]["methods"] == ["passkey", "backup_code"]
    assert passkey_sign_in(client, phone, pending_of(answer)).status_code == 200


def test_a_passkey_of_someone_else_does_not_finish_a_sign_in(hospital):
    carols = SoftAuthenticator(ORIGIN)
    add_passkey(signed_in("head_carol"), carols)
    bobs = SoftAuthenticator(ORIGIN)
    add_passkey(signed_in("surgeon_bob"), bobs)
    client = Client()
    pending = pending_of(password_step(client, "surgeon_bob"))
    options = post(client, "/api/auth/login/passkey/options", {"pending": pending}).json()
    answer = post(
        client,
        "/api/auth/login/passkey",
        {
            "ceremony": options["ceremony"],
            "credential": carols.get({**options["options"], "allowCredentials": []}),
        },
    )
    assert answer.json()["code"] == "invalid_second_factor"
    assert audit_entries("auth.login_failed", object_id="surgeon_bob")


@pytest.mark.parametrize(
    "tamper",
    ["another_origin", "no_user_verification", "cloned_counter", "replayed", "unknown"],
)
def test_a_passkey_answer_that_does_not_hold_is_refused(hospital, tamper):
    phone = SoftAuthenticator(ORIGIN)
    add_passkey(signed_in("surgeon_bob"), phone)
    assert passkey_sign_in(Client(), phone).status_code == 200
    client = Client()
    options = post(client, "/api/auth/login/passkey/options").json()
    origin = "http://evil.example" if tamper == "another_origin" else None
    if tamper == "no_user_verification":
        phone.user_verified = False
    if tamper == "cloned_counter":
        phone.credentials[0].counter = 0  # a copy that never saw the first sign-in
    if tamper == "unknown":
        phone = SoftAuthenticator(ORIGIN)
        phone.create({"rp": {"id": "localhost"}, "user": {"id": "eA"}, "challenge": "AA"})
    credential = phone.get(options["options"], origin=origin)
    body = {"ceremony": options["ceremony"], "credential": credential}
    if tamper == "replayed":
        assert post(client, "/api/auth/login/passkey", body).status_code == 200
    answer = post(Client(), "/api/auth/login/passkey", body)
    assert answer.status_code == 401
    expected = "sign_in_expired" if tamper == "replayed" else "invalid_second_factor"
    assert answer.json()["code"] == expected
    assert AuthSession.objects.filter(user__username="surgeon_bob").count() == 2 + (
        tamper == "replayed"
    )


def test_garbage_for_a_passkey_is_a_typed_refusal(hospital):
    client = Client()
    options = post(client, "/api/auth/login/passkey/options").json()
    for credential in ({}, {"id": "x", "response": "nope"}, {"id": 7, "rawId": [], "response": {}}):
        answer = post(
            client,
            "/api/auth/login/passkey",
            {"ceremony": options["ceremony"], "credential": credential},
        )
        assert answer.status_code in (401,), answer.content
        assert answer.json()["code"] in ("invalid_second_factor", "sign_in_expired")


def test_passkeys_need_a_name_not_an_address(hospital):
    client = signed_in("surgeon_bob")
    answer = post(
        client, "/api/auth/second-factor/passkeys/options", HTTP_ORIGIN="http://127.0.0.1:8000"
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "passkeys_unavailable"


def test_a_registration_is_checked(hospital):
    client = signed_in("surgeon_bob")
    options = post(client, "/api/auth/second-factor/passkeys/options").json()
    phone = SoftAuthenticator(ORIGIN, user_verified=False)
    answer = post(
        client,
        "/api/auth/second-factor/passkeys",
        {"ceremony": options["ceremony"], "credential": phone.create(options["options"])},
    )
    assert answer.status_code == 400
    assert not Passkey.objects.exists()


# --- Required by the institution ------------------------------------------------------------


@PRIVILEGED
@pytest.mark.parametrize("username", ["head_carol", "compliance_dan", "admin_zoe"])
def test_privileged_roles_must_set_one_up(hospital, username):
    answer = password_step(Client(), username)
    assert answer.json()["code"] == "second_factor_setup_required"
    assert answer.json()["data"]["methods"] == ["passkey", "totp"]
    assert not AuthSession.objects.exists()


@PRIVILEGED
def test_members_are_not_asked_unless_everyone_is(hospital):
    assert password_step(Client(), "surgeon_bob").status_code == 200
    with EVERYONE:
        assert (
            password_step(Client(), "surgeon_bob").json()["code"] == "second_factor_setup_required"
        )


@PRIVILEGED
def test_a_head_sets_up_an_app_to_finish_signing_in(hospital):
    client = Client()
    pending = pending_of(password_step(client, "head_carol"))
    setup = post(client, "/api/auth/login/enrol/totp", {"pending": pending}).json()
    done = post(
        client,
        "/api/auth/login/enrol/totp/confirm",
        {"pending": pending, "code": pyotp.TOTP(setup["secret"]).now()},
    )
    assert done.status_code == 200, done.content
    assert len(done.json()["backup_codes"]) == 10
    assert client.get("/api/auth/me").json()["username"] == "head_carol"
    # From now on, the app is asked for.
    assert password_step(Client(), "head_carol").json()["code"] == "second_factor_required"


@PRIVILEGED
def test_a_head_sets_up_a_passkey_to_finish_signing_in(hospital):
    client = Client()
    pending = pending_of(password_step(client, "head_carol"))
    options = post(client, "/api/auth/login/enrol/passkey/options", {"pending": pending}).json()
    phone = SoftAuthenticator(ORIGIN)
    done = post(
        client,
        "/api/auth/login/enrol/passkey",
        {
            "pending": pending,
            "credential": phone.create(options["options"]),
            "name": "Carol's phone",
        },
    )
    assert done.status_code == 200, done.content
    assert passkey_sign_in(Client(), phone).json()["user"]["username"] == "head_carol"


@PRIVILEGED
def test_a_setup_step_does_not_sign_in_with_a_code(hospital):
    """The enrolment step is not a second-factor step: a code of an app set up elsewhere is
    not taken there, and setting up is all it allows."""
    client = Client()
    pending = pending_of(password_step(client, "head_carol"))
    answer = code_step(client, "totp", pending, "123456")
    assert answer.json()["code"] == "sign_in_expired"
    assert post(client, "/api/auth/second-factor/totp").status_code == 401


@PRIVILEGED
def test_the_last_factor_of_a_privileged_role_stays(hospital):
    with override_settings(ROUNDS_SECOND_FACTOR="off"):
        client = signed_in("head_carol")
        set_up_app(client)
    answer = post(client, "/api/auth/second-factor/totp/remove", {"password": PASSWORD})
    assert answer.status_code == 409
    assert TotpDevice.objects.filter(user__username="head_carol").exists()


def test_removing_the_last_factor_drops_the_backup_codes(hospital):
    client = signed_in("surgeon_bob")
    set_up_app(client)
    wrong = post(client, "/api/auth/second-factor/totp/remove", {"password": "not-it-at-all"})
    assert wrong.json()["code"] == "invalid_credentials"
    removed = post(client, "/api/auth/second-factor/totp/remove", {"password": PASSWORD})
    assert removed.json() == {
        "required": False,
        "totp": False,
        "passkeys": [],
        "backup_codes_left": 0,
    }
    assert audit_entries("auth.totp_removed")
    assert password_step(Client(), "surgeon_bob").status_code == 200


def test_a_passkey_is_removed_with_the_password(hospital):
    client = signed_in("surgeon_bob")
    phone = SoftAuthenticator(ORIGIN)
    passkey = add_passkey(client, phone).json()["passkey"]
    set_up_app(client)
    answer = post(
        client, f"/api/auth/second-factor/passkeys/{passkey['id']}/remove", {"password": PASSWORD}
    )
    assert answer.json()["passkeys"] == []
    assert answer.json()["backup_codes_left"] == 10  # the app is still there
    assert passkey_sign_in(Client(), phone).status_code == 401
    other = signed_in("nurse_alice")
    assert (
        post(
            other,
            f"/api/auth/second-factor/passkeys/{passkey['id']}/remove",
            {"password": PASSWORD},
        ).status_code
        == 404
    )


def test_an_administrator_resets_a_lost_factor(hospital):
    set_up_app(signed_in("surgeon_bob"))
    refused = post(
        signed_in("head_carol"), f"/api/auth/users/{hospital.surgeon_bob.pk}/second-factor/reset"
    )
    assert refused.status_code == 403
    answer = post(
        signed_in("admin_zoe"), f"/api/auth/users/{hospital.surgeon_bob.pk}/second-factor/reset"
    )
    assert answer.status_code == 200
    assert answer.json()["backup_codes_left"] == 0
    assert audit_entries("auth.second_factor_reset")[0].data == {
        "passkeys": 0,
        "totp": 1,
        "backup_codes": 10,
    }
    assert password_step(Client(), "surgeon_bob").status_code == 200


def test_the_status_lists_the_factors(hospital):
    client = signed_in("surgeon_bob")
    add_passkey(client, SoftAuthenticator(ORIGIN), "Work phone")
    status = client.get("/api/auth/second-factor").json()
    assert status["totp"] is False
    assert [p["name"] for p in status["passkeys"]] == ["Work phone"]
    assert status["backup_codes_left"] == 10


def test_another_site_cannot_finish_a_sign_in(hospital):
    secret, _ = set_up_app(signed_in("surgeon_bob"))
    client = Client()
    pending = pending_of(password_step(client, "surgeon_bob"))
    answer = post(
        client,
        "/api/auth/login/totp",
        {"pending": pending, "code": pyotp.TOTP(secret).now()},
        HTTP_ORIGIN="http://evil.example",
    )
    assert answer.status_code == 403
    assert (
        not AuthSession.objects.filter(user__username="surgeon_bob")
        .exclude(pk__in=AuthSession.objects.filter(user__username="surgeon_bob").order_by("pk")[:1])
        .exists()
    )
