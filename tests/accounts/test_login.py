"""Signing in and out over HTTP, and django-axes' lockout on every path.

Passwords are accepted only by POST /api/auth/login (async) and, to confirm
the removal of a second factor, by accounts/factors (sync); both go through
`authenticate(request=…)`, so a lockout earned on one path holds on the
other. Django's admin form checks no password: it sends to Rounds' sign-in,
which asks for the second factor. Lockout is per (username, IP) and lifts
after the cool-off, without an administrator.
"""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import aauthenticate
from django.db.models import F
from django.test import AsyncClient, Client, RequestFactory

from accounts.models import AuthSession
from audit.models import AuditEvent
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login"
ADMIN_LOGIN = "/admin/login/"
HOME_IP = "10.1.0.7"
OTHER_IP = "10.2.0.9"
LIMIT = settings.AXES_FAILURE_LIMIT


def login(client, username: str, password: str, ip: str = HOME_IP):
    return client.post(
        LOGIN,
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=ip,
    )


def admin_login(client, username: str, password: str, ip: str = HOME_IP):
    return client.post(ADMIN_LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def fail(username: str, times: int, ip: str = HOME_IP) -> list[int]:
    """`times` wrong passwords from `ip`; returns the statuses."""
    client = Client()
    return [login(client, username, "wrong-password", ip).status_code for _ in range(times)]


def lock_out(username: str, ip: str = HOME_IP) -> None:
    statuses = fail(username, LIMIT, ip)
    # The attempt that reaches the limit is itself answered with the lockout.
    assert statuses == [401] * (LIMIT - 1) + [429]


def assert_locked_out(response) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "locked_out"
    assert body["message"]
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert body["data"]["retry_after_seconds"] == seconds
    assert response["Retry-After"] == str(seconds)
    assert "token" not in body


def age_attempts(username: str, minutes: int) -> None:
    """Move the recorded failures back in time, as if `minutes` had passed."""
    AccessAttempt.objects.filter(username=username).update(
        attempt_time=F("attempt_time") - timedelta(minutes=minutes)
    )


def audit(action: str, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


# --- Signing in ------------------------------------------------------------------


def test_login_gives_a_token_a_session_cookie_and_a_csrf_token(hospital):
    client = Client()
    response = login(client, "surgeon_bob", PASSWORD)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token"].startswith("rnd_")
    assert body["csrf_token"]
    assert body["user"]["username"] == "surgeon_bob"
    assert body["user"]["is_admin"] is False
    assert response.cookies[settings.SESSION_COOKIE_NAME].value
    assert response.cookies[settings.SESSION_COOKIE_NAME]["httponly"]
    assert response.cookies[settings.CSRF_COOKIE_NAME].value
    (auth_session,) = AuthSession.objects.filter(user=hospital.surgeon_bob)
    # Only the token's hash is stored.
    assert body["token"] not in auth_session.token_hash
    assert auth_session.ip == HOME_IP
    assert auth_session.session_key == client.session.session_key


def test_the_token_and_the_session_both_authenticate(hospital):
    session_client = Client()
    token = login(session_client, "nurse_alice", PASSWORD).json()["token"]
    by_cookie = session_client.get("/api/auth/me")
    by_token = Client().get("/api/auth/me", **bearer(token))
    for response in (by_cookie, by_token):
        assert response.status_code == 200
        assert response.json()["username"] == "nurse_alice"
        assert response.json()["id"] == hospital.nurse_alice.pk


def test_me_without_credentials_is_401():
    response = Client().get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_wrong_password_is_401_invalid_credentials(hospital):
    response = login(Client(), "surgeon_bob", "not-my-password")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert "token" not in response.json()
    assert not AuthSession.objects.filter(user=hospital.surgeon_bob).exists()


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(hospital):
    unknown = login(Client(), "nobody_here", PASSWORD)
    wrong = login(Client(), "surgeon_bob", "not-my-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_login_body_must_match_its_schema(hospital):
    response = Client().post(LOGIN, {"username": "surgeon_bob"}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_inactive_user_cannot_sign_in(hospital):
    hospital.surgeon_bob.is_active = False
    hospital.surgeon_bob.save(update_fields=["is_active"])
    response = login(Client(), "surgeon_bob", PASSWORD)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


def test_passwords_are_hashed_with_argon2(hospital):
    hospital.surgeon_bob.refresh_from_db()
    assert hospital.surgeon_bob.password.startswith("argon2")
    assert PASSWORD not in hospital.surgeon_bob.password


def test_login_works_through_the_async_client(hospital):
    async def go():
        client = AsyncClient()
        response = await client.post(
            LOGIN,
            {"username": "head_carol", "password": PASSWORD},
            content_type="application/json",
        )
        me = await client.get("/api/auth/me")
        return response, me

    response, me = async_to_sync(go)()
    assert response.status_code == 200
    assert me.status_code == 200
    assert me.json()["username"] == "head_carol"


# --- Signing out -------------------------------------------------------------------


def test_logout_with_the_bearer_token_revokes_it(hospital):
    token = login(Client(), "surgeon_bob", PASSWORD).json()["token"]
    client = Client()
    assert client.get("/api/auth/me", **bearer(token)).status_code == 200
    response = client.post("/api/auth/logout", **bearer(token))
    assert response.status_code == 200
    assert response.json() == {"signed_out": True}
    again = client.get("/api/auth/me", **bearer(token))
    assert again.status_code == 401
    assert again.json()["code"] == "not_authenticated"
    assert client.post("/api/auth/logout", **bearer(token)).status_code == 401
    (auth_session,) = AuthSession.objects.filter(user=hospital.surgeon_bob)
    assert auth_session.revoked_at is not None


def test_logout_by_session_needs_the_csrf_header(hospital):
    client = Client(enforce_csrf_checks=True)
    body = login(client, "nurse_alice", PASSWORD).json()
    refused = client.post("/api/auth/logout")
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    # Refused means refused: the login is still live.
    assert client.get("/api/auth/me").status_code == 200
    assert AuthSession.objects.get(user=hospital.nurse_alice).revoked_at is None

    signed_out = client.post("/api/auth/logout", HTTP_X_CSRFTOKEN=body["csrf_token"])
    assert signed_out.status_code == 200
    assert client.get("/api/auth/me").status_code == 401
    # The same login's bearer token dies with the session.
    assert Client().get("/api/auth/me", **bearer(body["token"])).status_code == 401


def test_a_bearer_request_needs_no_csrf_token(hospital):
    client = Client(enforce_csrf_checks=True)
    token = login(Client(), "nurse_alice", PASSWORD).json()["token"]
    assert client.post("/api/auth/logout", **bearer(token)).status_code == 200


def test_logging_out_one_device_keeps_the_others(hospital):
    phone = login(Client(), "nurse_alice", PASSWORD).json()["token"]
    desktop = login(Client(), "nurse_alice", PASSWORD).json()["token"]
    assert Client().post("/api/auth/logout", **bearer(phone)).status_code == 200
    assert Client().get("/api/auth/me", **bearer(phone)).status_code == 401
    assert Client().get("/api/auth/me", **bearer(desktop)).status_code == 200


def test_revoking_the_token_also_ends_its_browser_session(hospital):
    client = Client()
    token = login(client, "nurse_alice", PASSWORD).json()["token"]
    Client().post("/api/auth/logout", **bearer(token))
    assert client.get("/api/auth/me").status_code == 401


# --- Lockout (django-axes) -------------------------------------------------------


def test_five_failures_lock_even_the_right_password(hospital):
    lock_out("surgeon_bob")
    response = login(Client(), "surgeon_bob", PASSWORD)
    assert_locked_out(response)
    assert not AuthSession.objects.filter(user=hospital.surgeon_bob).exists()


def test_four_failures_do_not_lock(hospital):
    assert fail("surgeon_bob", LIMIT - 1) == [401] * (LIMIT - 1)
    assert login(Client(), "surgeon_bob", PASSWORD).status_code == 200


def test_a_success_resets_the_failure_count(hospital):
    fail("surgeon_bob", LIMIT - 1)
    assert login(Client(), "surgeon_bob", PASSWORD).status_code == 200
    assert fail("surgeon_bob", LIMIT - 1) == [401] * (LIMIT - 1)
    assert login(Client(), "surgeon_bob", PASSWORD).status_code == 200


def test_lockout_is_per_username(hospital):
    lock_out("surgeon_bob")
    assert login(Client(), "nurse_alice", PASSWORD).status_code == 200


def test_lockout_is_per_address(hospital):
    lock_out("surgeon_bob", ip=HOME_IP)
    assert login(Client(), "surgeon_bob", PASSWORD, ip=OTHER_IP).status_code == 200
    assert_locked_out(login(Client(), "surgeon_bob", PASSWORD, ip=HOME_IP))


def test_the_admin_site_checks_no_password_of_its_own(hospital):
    """Its form would sign an administrator in without the second factor."""
    client = Client()
    response = admin_login(client, "admin_zoe", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not AuthSession.objects.exists()
    assert not AccessAttempt.objects.exists()
    # Still not signed in: the admin index sends back to Rounds' sign-in.
    assert client.get("/admin/").status_code == 302


def test_the_admin_site_takes_the_session_of_a_rounds_sign_in(hospital):
    client = Client()
    assert login(client, "admin_zoe", PASSWORD).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_lockout_holds_on_the_async_authenticate_path(hospital):
    lock_out("surgeon_bob")
    request = RequestFactory().post(LOGIN, REMOTE_ADDR=HOME_IP)
    user = async_to_sync(aauthenticate)(request=request, username="surgeon_bob", password=PASSWORD)
    assert user is None
    assert request.axes_locked_out is True


def test_async_authenticate_counts_failures_towards_the_lockout(hospital):
    for _ in range(LIMIT):
        request = RequestFactory().post(LOGIN, REMOTE_ADDR=HOME_IP)
        assert (
            async_to_sync(aauthenticate)(
                request=request, username="surgeon_bob", password="wrong-password"
            )
            is None
        )
    assert request.axes_locked_out is True
    assert_locked_out(login(Client(), "surgeon_bob", PASSWORD))


def test_async_authenticate_signs_in_when_not_locked(hospital):
    request = RequestFactory().post(LOGIN, REMOTE_ADDR=HOME_IP)
    user = async_to_sync(aauthenticate)(request=request, username="surgeon_bob", password=PASSWORD)
    assert user == hospital.surgeon_bob
    assert not getattr(request, "axes_locked_out", False)


def test_lockout_lifts_after_the_cool_off(hospital):
    cool_off = settings.AXES_COOLOFF_TIME
    assert cool_off == timedelta(minutes=15)
    lock_out("surgeon_bob")
    age_attempts("surgeon_bob", 14)
    assert_locked_out(login(Client(), "surgeon_bob", PASSWORD))
    age_attempts("surgeon_bob", 2)
    response = login(Client(), "surgeon_bob", PASSWORD)
    assert response.status_code == 200, response.content
    assert response.json()["token"]


def test_retrying_during_lockout_does_not_extend_it(hospital):
    """An on-call doctor who keeps trying is back in 15 minutes after the lockout began."""
    lock_out("surgeon_bob")
    for _ in range(2):
        age_attempts("surgeon_bob", 7)
        assert_locked_out(login(Client(), "surgeon_bob", PASSWORD))
    age_attempts("surgeon_bob", 2)
    assert login(Client(), "surgeon_bob", PASSWORD).status_code == 200


def test_after_the_cool_off_a_fresh_count_starts(hospital):
    lock_out("surgeon_bob")
    age_attempts("surgeon_bob", 16)
    assert fail("surgeon_bob", 1) == [401]
    assert login(Client(), "surgeon_bob", PASSWORD).status_code == 200


# --- Audit ----------------------------------------------------------------------------


def test_login_and_logout_are_audited(hospital):
    token = login(Client(), "surgeon_bob", PASSWORD).json()["token"]
    auth_session = AuthSession.objects.get(user=hospital.surgeon_bob)
    (entry,) = audit("auth.login")
    assert (entry.actor_id, entry.actor_username) == (hospital.surgeon_bob.pk, "surgeon_bob")
    assert (entry.object_type, entry.object_id) == ("auth_session", str(auth_session.pk))
    assert entry.ip == HOME_IP

    Client().post("/api/auth/logout", REMOTE_ADDR=OTHER_IP, **bearer(token))
    (entry,) = audit("auth.logout")
    assert entry.actor_id == hospital.surgeon_bob.pk
    assert entry.object_id == str(auth_session.pk)
    assert entry.ip == OTHER_IP


def test_a_failed_login_is_audited_without_the_password(hospital):
    fail("surgeon_bob", 1)
    (entry,) = audit("auth.login_failed")
    assert (entry.object_type, entry.object_id) == ("username", "surgeon_bob")
    assert entry.ip == HOME_IP
    assert entry.actor_id is None
    assert "wrong-password" not in entry.canonical().decode()
    assert not audit("auth.login")


def test_a_lockout_is_audited(hospital):
    lock_out("surgeon_bob")
    assert len(audit("auth.login_failed", object_id="surgeon_bob")) == LIMIT
    locked = audit("auth.locked_out")
    assert locked, "reaching the limit writes auth.locked_out"
    assert all(e.object_id == "surgeon_bob" and e.ip == HOME_IP for e in locked)
    before = len(locked)
    login(Client(), "surgeon_bob", PASSWORD)
    # A refused attempt during the lockout is traced too, and is not a login.
    assert len(audit("auth.locked_out")) == before + 1
    assert not audit("auth.login")
    assert PASSWORD not in "".join(e.canonical().decode() for e in AuditEvent.objects.all())
