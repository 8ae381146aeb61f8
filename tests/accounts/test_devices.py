"""Signed-in devices: listed, revoked by their user or by an administrator, and
signed out when idle (accounts/devices.py).

A revoked device's sockets close at once, its push subscriptions go, and the
audit trail says who cut off whose device.
"""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from accounts import devices
from accounts.actions import resolve_token
from accounts.models import AuthSession, hash_token
from audit.models import AuditEvent
from core import protocol
from push.models import PushSubscription
from push.subscriptions import do_subscribe
from tests.support import PASSWORD, issue_token
from tests.support.sockets import assert_alive, assert_closed, connect_with, finish, open_socket

pytestmark = pytest.mark.django_db

DEVICES = "/api/auth/devices"
PHONE_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def session_of(token: str) -> AuthSession:
    return AuthSession.objects.get(token_hash=hash_token(token))


def sign_in(username: str, **extra) -> str:
    body = {"username": username, "password": PASSWORD, **extra}
    response = Client().post(
        "/api/auth/login",
        body,
        content_type="application/json",
        HTTP_USER_AGENT=PHONE_UA,
        REMOTE_ADDR="10.1.0.7",
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def subscribe(auth_session: AuthSession) -> None:
    endpoint = f"https://updates.push.services.mozilla.com/wpush/v2/{auth_session.pk}"
    do_subscribe(auth_session, endpoint, "p256dh", "auth")


def test_a_user_sees_their_live_devices_newest_first(hospital):
    phone = sign_in("nurse_alice")
    laptop = sign_in("nurse_alice", device="Ward 4 laptop")
    issue_token(hospital.surgeon_bob)
    revoked = issue_token(hospital.nurse_alice)
    AuthSession.objects.filter(pk=session_of(revoked).pk).update(revoked_at=timezone.now())

    listed = Client().get(DEVICES, **bearer(phone)).json()

    assert [d["id"] for d in listed] == [session_of(laptop).pk, session_of(phone).pk]
    assert [d["device_name"] for d in listed] == ["Ward 4 laptop", "Chrome on Android"]
    assert [d["current"] for d in listed] == [False, True]
    assert listed[1]["ip"] == "10.1.0.7"
    assert listed[1]["created_at"] and listed[1]["last_seen_at"]


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (PHONE_UA, "Chrome on Android"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1", "Safari on iOS"),
        ("Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 Safari/537.36 Edg/131.0", "Edge on Windows"),
        ("python-httpx/0.28.1", "Python client"),
        ("", "Unknown device"),
    ],
)
def test_a_device_is_named_from_its_user_agent(user_agent, name):
    assert devices.device_name(None, user_agent) == name


def test_a_device_name_longer_than_60_is_refused(hospital):
    response = Client().post(
        "/api/auth/login",
        {"username": "nurse_alice", "password": PASSWORD, "device": "x" * 61},
        content_type="application/json",
    )
    assert response.status_code == 400


def test_revoking_ones_own_device_signs_it_out_and_drops_its_pushes(hospital):
    current = issue_token(hospital.nurse_alice)
    lost = issue_token(hospital.nurse_alice)
    subscribe(session_of(lost))

    response = Client().delete(f"{DEVICES}/{session_of(lost).pk}", **bearer(current))

    assert response.status_code == 200, response.content
    assert response.json() == {"revoked": 1}
    assert Client().get("/api/auth/me", **bearer(lost)).status_code == 401
    assert Client().get("/api/auth/me", **bearer(current)).status_code == 200
    assert not PushSubscription.objects.standing().exists()
    entry = AuditEvent.objects.get(action="device.revoked")
    assert entry.actor_id == hospital.nurse_alice.pk
    assert entry.object_id == str(session_of(lost).pk)
    assert entry.data == {"user": hospital.nurse_alice.pk, "reason": "revoked"}


def test_revoking_the_current_device_is_a_sign_out(hospital):
    current = issue_token(hospital.nurse_alice)
    response = Client().delete(f"{DEVICES}/{session_of(current).pk}", **bearer(current))
    assert response.status_code == 200
    assert Client().get("/api/auth/me", **bearer(current)).status_code == 401


def test_another_users_device_is_not_found(hospital):
    bobs = issue_token(hospital.surgeon_bob)
    alices = issue_token(hospital.nurse_alice)
    response = Client().delete(f"{DEVICES}/{session_of(bobs).pk}", **bearer(alices))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert session_of(bobs).revoked_at is None
    assert not AuditEvent.objects.filter(action__startswith="device.").exists()


def test_an_administrator_revokes_all_of_a_users_devices(hospital):
    tokens = [issue_token(hospital.surgeon_bob) for _ in range(2)]
    subscribe(session_of(tokens[0]))
    admin = issue_token(hospital.admin_zoe)

    response = Client().post(
        f"/api/auth/users/{hospital.surgeon_bob.pk}/devices/revoke", **bearer(admin)
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"revoked": 2}
    assert all(Client().get("/api/auth/me", **bearer(t)).status_code == 401 for t in tokens)
    assert not PushSubscription.objects.standing().exists()
    entry = AuditEvent.objects.get(action="device.revoked_all")
    assert (entry.actor_id, entry.object_id) == (
        hospital.admin_zoe.pk,
        str(hospital.surgeon_bob.pk),
    )
    assert entry.data == {"count": 2}


def test_a_non_administrator_may_not_revoke_anyones_devices(hospital):
    bobs = issue_token(hospital.surgeon_bob)
    head = issue_token(hospital.head_carol)
    response = Client().post(
        f"/api/auth/users/{hospital.surgeon_bob.pk}/devices/revoke", **bearer(head)
    )
    assert response.status_code == 403
    assert session_of(bobs).revoked_at is None


def test_an_idle_device_must_sign_in_again(hospital, settings):
    token = issue_token(hospital.nurse_alice)
    idle = timezone.now() - timedelta(seconds=settings.ROUNDS_DEVICE_IDLE_SECONDS + 1)
    AuthSession.objects.filter(pk=session_of(token).pk).update(last_seen_at=idle)

    response = Client().get("/api/auth/me", **bearer(token))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert session_of(token).revoked_at is not None
    entry = AuditEvent.objects.get(action="device.revoked")
    assert entry.actor_id is None
    assert entry.data == {"user": hospital.nurse_alice.pk, "reason": "idle"}


def test_last_seen_is_written_at_most_once_a_minute(hospital):
    token = issue_token(hospital.nurse_alice)
    recent = timezone.now() - timedelta(seconds=30)
    AuthSession.objects.filter(pk=session_of(token).pk).update(last_seen_at=recent)
    resolve_token(token)
    assert session_of(token).last_seen_at == recent

    a_while_ago = timezone.now() - timedelta(seconds=90)
    AuthSession.objects.filter(pk=session_of(token).pk).update(last_seen_at=a_while_ago)
    resolve_token(token)
    assert session_of(token).last_seen_at > recent


async def test_a_revoked_devices_socket_closes_at_once(live_hospital):
    h = live_hospital
    lost_token = await database_sync_to_async(issue_token)(h.nurse_alice)
    current_token = await database_sync_to_async(issue_token)(h.nurse_alice)
    lost, _ = await connect_with(lost_token)
    current, _ = await connect_with(current_token)
    lost_session = await database_sync_to_async(session_of)(lost_token)
    current_session = await database_sync_to_async(session_of)(current_token)

    await database_sync_to_async(devices.check_revoke_device)(
        current_session, lost_session.pk, None
    )

    await assert_closed(lost, protocol.CLOSE_UNAUTHENTICATED)
    await assert_alive(current)
    await finish(lost)
    await current.disconnect()


async def test_an_idle_device_cannot_open_a_socket(live_hospital, settings):
    h = live_hospital
    token = await database_sync_to_async(issue_token)(h.nurse_alice)
    idle = timezone.now() - timedelta(seconds=settings.ROUNDS_DEVICE_IDLE_SECONDS + 1)
    await AuthSession.objects.filter(token_hash=hash_token(token)).aupdate(last_seen_at=idle)

    socket = await open_socket(token)
    connected, _ = await socket.connect()
    assert connected
    await assert_closed(socket, protocol.CLOSE_UNAUTHENTICATED)
    await finish(socket)
    assert (await AuthSession.objects.aget(token_hash=hash_token(token))).revoked_at
