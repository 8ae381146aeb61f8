"""Subscribing a device, unsubscribing it, signing out, and the quiet mode, over HTTP:
every refusal, and what each change leaves in the database and the audit trail."""

import base64
import json
from typing import Any

import pytest
from django.test import Client

from accounts.models import AuthSession
from audit.models import AuditEvent
from push.models import PushPreference, PushSubscription
from push.vapid import public_key
from tests.support import PASSWORD, assert_refused, issue_token

pytestmark = pytest.mark.django_db
SUBSCRIPTIONS = "/api/push/subscriptions"


class Device:
    """A persona's browser: one login (bearer token), one push subscription at most."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.client = Client()
        self.token = issue_token(user)
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None):
        kwargs: dict[str, Any] = dict(self.auth)
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(self.client, method)(path, **kwargs)

    def subscribe(self, subscription: dict[str, Any]):
        return self.call("post", SUBSCRIPTIONS, subscription)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def standing() -> list[tuple[int, str]]:
    return list(PushSubscription.objects.standing().values_list("user_id", "endpoint"))


def test_the_key_is_the_vapid_public_point(hospital):
    response = Device(hospital.nurse_alice).call("get", "/api/push/key")
    assert response.status_code == 200
    key = response.json()["key"]
    assert key == public_key()
    point = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(point) == 65 and point[0] == 4


def test_subscribing_is_idempotent_and_audited_without_the_endpoint(hospital, receiver):
    alice = Device(hospital.nurse_alice)
    browser = receiver.subscribe()
    first = alice.subscribe(browser.as_json())
    assert first.status_code == 200, first.content
    assert first.json()["created"] is True
    assert first.json()["push_host"] == "127.0.0.1"
    again = alice.subscribe(browser.as_json())
    assert again.json() == {**first.json(), "created": False}
    assert standing() == [(hospital.nurse_alice.pk, browser.endpoint)]
    row = PushSubscription.objects.get()
    assert row.auth_session.token_hash != "" and row.auth_session.user == hospital.nurse_alice
    entries = AuditEvent.objects.filter(action="push.subscribed")
    assert entries.count() == 1
    assert entries.get().data == {"push_host": "127.0.0.1", "auth_session": row.auth_session_id}
    assert browser.endpoint not in json.dumps(list(AuditEvent.objects.values("data")))


def test_a_new_endpoint_from_the_same_login_replaces_the_old_one(hospital, receiver):
    alice = Device(hospital.nurse_alice)
    old, new = receiver.subscribe(), receiver.subscribe()
    alice.subscribe(old.as_json())
    assert alice.subscribe(new.as_json()).json()["created"] is True
    assert standing() == [(hospital.nurse_alice.pk, new.endpoint)]
    retired = PushSubscription.objects.get(endpoint=old.endpoint)
    assert retired.removed_at is not None and retired.removal == "replaced"


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [
        ("http://push.example.org/sub/1", "http, not on this machine"),
        ("ftp://push.example.org/sub/1", "not http"),
        ("https:///sub/1", "no host"),
        ("https://user:pw@push.example.org/sub/1", "credentials in the URL"),
        ("not a url", "not a URL"),
        ("https://push.example.org/" + "a" * 1000, "too long"),
        ("https://push.example.org/sub/1", "not a push service the hospital allows"),
        ("https://10.0.0.5/admin", "an address inside the hospital"),
        ("https://fcm.googleapis.com.attacker.example/sub/1", "a push service's name, elsewhere"),
        ("https://evilnotify.windows.com/sub/1", "not under .notify.windows.com"),
    ],
)
def test_an_endpoint_rounds_cannot_send_to_is_refused(hospital, receiver, endpoint, why):
    subscription = {**receiver.subscribe().as_json(), "endpoint": endpoint}
    response = Device(hospital.nurse_alice).subscribe(subscription)
    assert_refused(response, 400, "invalid_request")
    assert standing() == []


def test_a_local_endpoint_needs_the_setting(hospital, receiver, settings):
    settings.ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS = False
    response = Device(hospital.nurse_alice).subscribe(receiver.subscribe().as_json())
    assert_refused(response, 400, "invalid_request")
    assert standing() == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:APA91b",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA",
        "https://web.push.apple.com/QGz0",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
    ],
)
def test_a_browsers_push_service_needs_no_setting(hospital, receiver, settings, endpoint):
    settings.ROUNDS_PUSH_ALLOW_LOCAL_ENDPOINTS = False
    subscription = {**receiver.subscribe().as_json(), "endpoint": endpoint}
    assert Device(hospital.nurse_alice).subscribe(subscription).status_code == 200


def test_the_hospital_names_its_push_services(hospital, receiver, settings):
    settings.ROUNDS_PUSH_SERVICES = ["push.example.org"]
    subscription = {**receiver.subscribe().as_json(), "endpoint": "https://push.example.org/s/1"}
    assert Device(hospital.nurse_alice).subscribe(subscription).status_code == 200
    other = {**receiver.subscribe().as_json(), "endpoint": "https://fcm.googleapis.com/fcm/s/2"}
    refused = assert_refused(Device(hospital.nurse_alice).subscribe(other), 400, "invalid_request")
    assert refused["data"] == {"host": "fcm.googleapis.com"}


NOT_ON_THE_CURVE = b"\x04" + b"\x01" * 64


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ({"p256dh": "not base64url!", "auth": b64(bytes(16))}, "p256dh not base64url"),
        ({"p256dh": b64(b"\x04" + bytes(63)), "auth": b64(bytes(16))}, "p256dh 64 bytes"),
        ({"p256dh": b64(b"\x02" + bytes(64)), "auth": b64(bytes(16))}, "not uncompressed"),
        ({"p256dh": b64(NOT_ON_THE_CURVE), "auth": b64(bytes(16))}, "not on P-256"),
        ({"auth": b64(bytes(15))}, "auth 15 bytes"),
        ({"auth": b64(bytes(32))}, "auth 32 bytes"),
        ({"auth": ""}, "auth empty"),
    ],
)
def test_keys_rfc_8291_cannot_use_are_refused(hospital, receiver, keys, why):
    subscription = receiver.subscribe().as_json()
    subscription["keys"] = {**subscription["keys"], **keys}
    response = Device(hospital.nurse_alice).subscribe(subscription)
    assert_refused(response, 400, "invalid_request")
    assert standing() == []


def test_a_body_without_keys_is_refused(hospital, receiver):
    response = Device(hospital.nurse_alice).subscribe({"endpoint": receiver.origin + "/push/x"})
    assert_refused(response, 400, "invalid_request")


def test_another_users_endpoint_with_other_keys_is_refused(hospital, receiver):
    browser = receiver.subscribe()
    Device(hospital.nurse_alice).subscribe(browser.as_json())
    impostor = {**receiver.subscribe().as_json(), "endpoint": browser.endpoint}
    response = Device(hospital.surgeon_bob).subscribe(impostor)
    assert_refused(response, 409, "conflict")
    assert standing() == [(hospital.nurse_alice.pk, browser.endpoint)]
    assert AuditEvent.objects.filter(action="push.subscribed").count() == 1


def test_the_same_browser_subscription_moves_to_whoever_signs_in_there(hospital, receiver):
    """A shared computer whose last user's session expired without a sign-out."""
    browser = receiver.subscribe()
    Device(hospital.nurse_alice).subscribe(browser.as_json())
    response = Device(hospital.surgeon_bob).subscribe(browser.as_json())
    assert response.status_code == 200 and response.json()["created"] is True
    assert standing() == [(hospital.surgeon_bob.pk, browser.endpoint)]
    alices = PushSubscription.objects.get(user=hospital.nurse_alice)
    assert alices.removal == "rebound"
    entry = AuditEvent.objects.filter(action="push.subscribed").latest("pk")
    assert entry.data["rebound_from_user"] == hospital.nurse_alice.pk


def test_unsubscribing_removes_ones_own_subscription_only(hospital, receiver):
    browser = receiver.subscribe()
    alice = Device(hospital.nurse_alice)
    alice.subscribe(browser.as_json())
    by_bob = Device(hospital.surgeon_bob).call(
        "delete", SUBSCRIPTIONS, {"endpoint": browser.endpoint}
    )
    assert_refused(by_bob, 404, "not_found")
    unknown = alice.call("delete", SUBSCRIPTIONS, {"endpoint": receiver.origin + "/push/nope"})
    assert_refused(unknown, 404, "not_found")
    assert standing() == [(hospital.nurse_alice.pk, browser.endpoint)]
    done = alice.call("delete", SUBSCRIPTIONS, {"endpoint": browser.endpoint})
    assert done.status_code == 200 and done.json() == {"removed": True}
    assert standing() == []
    row = PushSubscription.objects.get()
    assert row.removal == "unsubscribed" and row.removed_at is not None
    entry = AuditEvent.objects.get(action="push.unsubscribed")
    assert entry.data == {"push_host": "127.0.0.1", "reason": "unsubscribed"}
    again = alice.call("delete", SUBSCRIPTIONS, {"endpoint": browser.endpoint})
    assert_refused(again, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/push/key", None),
        ("post", SUBSCRIPTIONS, "subscription"),
        ("delete", SUBSCRIPTIONS, "endpoint"),
        ("get", "/api/push/preferences", None),
        ("put", "/api/push/preferences", {"quiet_off_duty": True}),
    ],
)
def test_every_route_refuses_the_anonymous(hospital, receiver, method, path, body):
    browser = receiver.subscribe()
    Device(hospital.nurse_alice).subscribe(browser.as_json())
    data = {"subscription": browser.as_json(), "endpoint": {"endpoint": browser.endpoint}}
    payload = data.get(body, body) if isinstance(body, str) else body
    kwargs: dict[str, Any] = {}
    if payload is not None:
        kwargs = {"data": json.dumps(payload), "content_type": "application/json"}
    response = getattr(Client(), method)(path, **kwargs)
    assert_refused(response, 401, "not_authenticated")
    assert standing() == [(hospital.nurse_alice.pk, browser.endpoint)]
    assert not PushPreference.objects.exists()


def test_signing_out_removes_that_devices_subscriptions_only(hospital, receiver):
    """Alice's phone and her ward computer: signing out on the computer keeps the phone."""
    computer, phone = receiver.subscribe(), receiver.subscribe()
    client = Client()
    login = client.post(
        "/api/auth/login",
        {"username": "nurse_alice", "password": PASSWORD},
        content_type="application/json",
    )
    csrf = {"HTTP_X_CSRFTOKEN": login.json()["csrf_token"]}
    subscribed = client.post(
        SUBSCRIPTIONS, computer.as_json(), content_type="application/json", **csrf
    )
    assert subscribed.status_code == 200, subscribed.content
    Device(hospital.nurse_alice).subscribe(phone.as_json())
    assert client.post("/api/auth/logout", **csrf).status_code == 200
    assert standing() == [(hospital.nurse_alice.pk, phone.endpoint)]
    signed_out = PushSubscription.objects.get(endpoint=computer.endpoint)
    assert signed_out.removal == "signed_out"
    entry = AuditEvent.objects.get(action="push.unsubscribed")
    assert entry.data == {"push_host": "127.0.0.1", "reason": "signed_out"}
    assert entry.actor_id == hospital.nurse_alice.pk


def test_a_bearer_tokens_logout_removes_its_subscription(hospital, receiver):
    alice = Device(hospital.nurse_alice)
    alice.subscribe(receiver.subscribe().as_json())
    assert alice.call("post", "/api/auth/logout").status_code == 200
    assert standing() == []
    assert AuthSession.objects.get(pk=PushSubscription.objects.get().auth_session_id).revoked_at


def test_quiet_mode_is_read_and_changed_by_its_owner(hospital):
    alice = Device(hospital.nurse_alice)
    assert alice.call("get", "/api/push/preferences").json() == {
        "quiet_off_duty": False,
        "on_duty": False,
    }
    changed = alice.call("put", "/api/push/preferences", {"quiet_off_duty": True})
    assert changed.status_code == 200
    assert changed.json() == {"quiet_off_duty": True, "on_duty": False}
    assert PushPreference.objects.get(user=hospital.nurse_alice).quiet_off_duty
    assert (
        Device(hospital.surgeon_bob).call("get", "/api/push/preferences").json()["quiet_off_duty"]
        is False
    )
    # Audited once per change, not per request.
    alice.call("put", "/api/push/preferences", {"quiet_off_duty": True})
    entries = AuditEvent.objects.filter(action="push.preferences_changed")
    assert list(entries.values_list("data", flat=True)) == [{"quiet_off_duty": True}]


def test_quiet_mode_refuses_what_is_not_a_boolean(hospital):
    response = Device(hospital.nurse_alice).call(
        "put", "/api/push/preferences", {"quiet_off_duty": "sometimes"}
    )
    assert_refused(response, 400, "invalid_request")
    assert not PushPreference.objects.exists()
