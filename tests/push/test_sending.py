"""What reaches a phone: pushes sent to a local RFC 8030 push service, which checks
VAPID and decrypts them with the subscription's own keys (bench/push_receiver.py)."""

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from accounts.models import AuthSession
from bench.push_receiver import PushReceiver, Subscriber
from push import notify, sender
from push.models import PushPreference, PushSubscription
from push.subscriptions import check_subscribe
from push.vapid import public_key
from rooms import oncall
from tests.support import issue_token
from tests.support.posts import post

pytestmark = pytest.mark.django_db
REQUEST = {
    "kind": "advice.request",
    "department": "Plastic surgery",
    "priority": "urgent",
    "request": 12,
}


def commit():
    """What a commit runs: the test's own transaction is never committed."""
    return TestCase.captureOnCommitCallbacks(execute=True)


def subscribe(user, receiver: PushReceiver) -> Subscriber:
    """A browser of `user` subscribed, on a login of its own."""
    from accounts.models import hash_token

    browser = receiver.subscribe()
    session = AuthSession.objects.get(token_hash=hash_token(issue_token(user)))
    check_subscribe(session, browser.endpoint, browser.p256dh, browser.auth)
    return browser


def patient_words(h) -> list[str]:
    p = h.patient
    return [p.family_name, p.given_name, p.ipp, p.birth_date.isoformat(), h.thread.title]


def test_an_urgent_push_arrives_decrypted_with_its_headers(hospital, receiver, settings):
    phone = subscribe(hospital.surgeon_bob, receiver)
    with commit():
        notify.push_on_commit(
            [hospital.surgeon_bob.pk], REQUEST, urgency="high", topic="r12", ttl=600
        )
        assert receiver.received == []  # nothing before the commit
    (push,) = receiver.wait_for(1)
    assert push.payload == REQUEST
    assert (push.urgency, push.topic, push.ttl) == ("high", "r12", 600)
    assert push.vapid_key == public_key()
    assert push.claims["sub"] == settings.ROUNDS_VAPID_SUBJECT
    assert push.claims["aud"] == receiver.origin
    text = json.dumps(push.payload, ensure_ascii=False)
    assert not [word for word in patient_words(hospital) if word in text]
    assert receiver.for_(phone) == [push]
    assert PushSubscription.objects.get().last_sent_at is not None


def test_a_rolled_back_transaction_pushes_nothing(hospital, receiver):
    subscribe(hospital.surgeon_bob, receiver)
    with pytest.raises(RuntimeError), commit(), transaction.atomic():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
        raise RuntimeError("rolled back")
    sender.drain(5)
    assert receiver.received == [] and receiver.refused == []


def test_every_live_device_of_each_user_gets_it_and_no_one_else(hospital, receiver):
    phone, computer = (
        subscribe(hospital.surgeon_bob, receiver),
        subscribe(hospital.surgeon_bob, receiver),
    )
    alices = subscribe(hospital.nurse_alice, receiver)
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
    assert len(receiver.wait_for(2)) == 2
    assert len(receiver.for_(phone)) == len(receiver.for_(computer)) == 1
    assert receiver.for_(alices) == []
    assert receiver.received[0].urgency == "normal" and receiver.received[0].topic is None


def test_a_gone_subscription_is_marked_and_never_used_again(hospital, receiver):
    phone = subscribe(hospital.surgeon_bob, receiver)
    receiver.mark_gone(phone)
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
    assert receiver.refused == [(phone.endpoint.rsplit("/", 1)[1], 410, "gone")]
    row = PushSubscription.objects.get()
    assert row.gone_at is not None and row.removed_at is None  # kept, never used
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
    assert len(receiver.refused) == 1 and receiver.received == []


def test_a_failing_push_service_leaves_the_subscription(hospital, receiver):
    """A 404 for an endpoint the push service never made is gone too; a 5xx is not
    (the receiver has no 5xx: an unreachable port stands for it)."""
    phone = subscribe(hospital.surgeon_bob, receiver)
    PushSubscription.objects.update(endpoint="http://127.0.0.1:9/push/nowhere")
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
    row = PushSubscription.objects.get()
    assert row.gone_at is None and row.last_sent_at is None
    assert receiver.for_(phone) == []


def test_a_signed_out_or_expired_login_is_never_pushed_to(hospital, receiver):
    expired, revoked = (
        subscribe(hospital.surgeon_bob, receiver),
        subscribe(hospital.surgeon_bob, receiver),
    )
    live = subscribe(hospital.surgeon_bob, receiver)
    AuthSession.objects.filter(push_subscriptions__endpoint=expired.endpoint).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    AuthSession.objects.filter(push_subscriptions__endpoint=revoked.endpoint).update(
        revoked_at=timezone.now()
    )
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
    assert [push.token for push in receiver.received] == [live.endpoint.rsplit("/", 1)[1]]


def on_call(h, user, *, now: bool) -> None:
    role = oncall.check_create_role(h.head_carol, h.plastic.pk, "On-call plastic surgeon")
    start = timezone.now() - timedelta(hours=1) if now else timezone.now() + timedelta(hours=5)
    oncall.check_add_shift(
        h.head_carol, h.plastic.pk, role["id"], user.pk, start, start + timedelta(hours=2)
    )


@pytest.mark.parametrize(("shift_now", "delivered"), [(True, 1), (False, 0)])
def test_quiet_mode_holds_routine_pushes_off_duty_only(hospital, receiver, shift_now, delivered):
    subscribe(hospital.surgeon_bob, receiver)
    PushPreference.objects.create(user=hospital.surgeon_bob, quiet_off_duty=True)
    on_call(hospital, hospital.surgeon_bob, now=shift_now)
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], {"kind": "note"}, routine=True)
    assert len(receiver.received) == delivered
    # An urgent push is never held back.
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST, urgency="high")
    assert len(receiver.wait_for(delivered + 1)) == delivered + 1


def test_routine_pushes_reach_users_not_in_quiet_mode(hospital, receiver):
    subscribe(hospital.surgeon_bob, receiver)
    PushPreference.objects.create(user=hospital.surgeon_bob, quiet_off_duty=False)
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], {"kind": "note"}, routine=True)
    assert len(receiver.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("payload", "options"),
    [
        ({"department": "Plastic surgery"}, {}),
        ({"kind": "x", "padding": "a" * 3000}, {}),
        (REQUEST, {"topic": "not a topic!"}),
        (REQUEST, {"topic": "t" * 33}),
        (REQUEST, {"ttl": -1}),
        (REQUEST, {"urgency": "very-high"}),
    ],
)
def test_a_payload_or_header_a_push_cannot_carry_is_a_callers_bug(hospital, payload, options):
    with pytest.raises(ValueError), commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], payload, **options)


def test_a_new_message_pushes_to_the_other_members_without_content(hospital, receiver):
    bobs, alices, carols = (
        subscribe(hospital.surgeon_bob, receiver),
        subscribe(hospital.nurse_alice, receiver),
        subscribe(hospital.head_carol, receiver),
    )
    ines = subscribe(hospital.nurse_ines, receiver)  # another department
    with commit():
        post(hospital, "surgeon_bob", hospital.thread, "bob-push-0001")
    receiver.wait_for(2)
    assert receiver.for_(bobs) == [] and receiver.for_(ines) == []
    for browser in (alices, carols):
        (push,) = receiver.for_(browser)
        assert push.payload == {
            "kind": "message.new",
            "department": "Plastic surgery",
            "thread": hospital.thread.pk,
        }
        assert (push.urgency, push.topic) == ("normal", f"t{hospital.thread.pk}")
        text = json.dumps(push.payload, ensure_ascii=False)
        assert not [word for word in patient_words(hospital) if word in text]


def test_a_busy_thread_buzzes_a_phone_once_per_window(hospital, receiver, settings):
    alices = subscribe(hospital.nurse_alice, receiver)
    for n in range(3):
        with commit():
            post(hospital, "surgeon_bob", hospital.thread, f"bob-busy-000{n}")
    assert len(receiver.for_(alices)) == 1
    settings.ROUNDS_PUSH_MESSAGE_COALESCE_SECONDS = 0
    with commit():
        post(hospital, "surgeon_bob", hospital.thread, "bob-busy-0009")
    assert len(receiver.for_(alices)) == 2


def test_message_pushes_respect_quiet_mode(hospital, receiver):
    alices = subscribe(hospital.nurse_alice, receiver)
    PushPreference.objects.create(user=hospital.nurse_alice, quiet_off_duty=True)
    with commit():
        post(hospital, "surgeon_bob", hospital.thread, "bob-quiet-0001")
    assert receiver.for_(alices) == []


def test_the_off_mode_sends_nothing(hospital, receiver, settings):
    subscribe(hospital.surgeon_bob, receiver)
    settings.ROUNDS_PUSH_SENDER = "off"
    with commit():
        notify.push_on_commit([hospital.surgeon_bob.pk], REQUEST)
    assert receiver.received == [] and receiver.refused == []


@pytest.mark.django_db(transaction=True)
def test_the_sender_thread_sends_off_the_committing_thread(live_hospital, receiver, settings):
    """The default mode: the commit only enqueues; drain() waits for the thread."""
    import threading

    settings.ROUNDS_PUSH_SENDER = "thread"
    subscribe(live_hospital.surgeon_bob, receiver)
    seen: list[str] = []
    original = sender.deliver

    def spy(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    sender.deliver = spy
    try:
        with transaction.atomic():
            notify.push_on_commit([live_hospital.surgeon_bob.pk], REQUEST, urgency="high")
        assert notify.drain(30)
    finally:
        sender.deliver = original
    assert seen == ["rounds-push-sender"]
    assert [push.payload for push in receiver.received] == [REQUEST]


def test_a_consults_messages_push_to_its_guest_too(hospital, receiver):
    """The emergency doctor, no member of Plastic surgery, hears of the surgeon's answer
    in their consult; not of the department's other threads (docs/advice.md "Consults")."""
    from chat.actions import check_post_message
    from tests.support.consults import consult_sealed, open_consult

    key = open_consult(hospital)
    ines = subscribe(hospital.nurse_ines, receiver)
    with commit():
        answer = consult_sealed(hospital, "surgeon_bob", key.thread, key, "bob-consult-push")
        check_post_message(hospital.surgeon_bob, key.thread, "bob-consult-push", answer)
    receiver.wait_for(1)
    (push,) = receiver.for_(ines)
    assert push.payload == {
        "kind": "message.new",
        "department": "Plastic surgery",
        "thread": key.thread,
    }
    with commit():
        post(hospital, "surgeon_bob", hospital.thread, "bob-elsewhere-01")
    assert notify.drain()
    assert len(receiver.for_(ines)) == 1


def test_a_message_push_waits_for_its_burst_and_an_alert_does_not(settings):
    """The sender thread holds a new message's push for the gather time, runs the same
    sender's posts in one thread once, and runs an advice alert at once meanwhile."""
    import threading
    import time as clock

    settings.ROUNDS_PUSH_SENDER = "thread"
    settings.ROUNDS_PUSH_MESSAGE_GATHER_SECONDS = 0.6
    ran: list[tuple[str, float]] = []
    original = sender.run
    lock = threading.Lock()

    def record(job):
        with lock:
            ran.append((type(job).__name__, clock.monotonic()))

    sender.run = record
    try:
        started = clock.monotonic()
        message = sender.MessagePosted(department_id=1, sender_id=2, thread_id=3)
        sender.enqueue(message)
        sender.enqueue(message)  # the next post of the burst
        sender.enqueue(sender.Send((4,), '{"kind":"advice.request"}', "high", False, None, 60))
        assert sender.drain(10)
    finally:
        sender.run = original
    assert [name for name, _ in ran] == ["Send", "MessagePosted"]
    assert ran[0][1] - started < 0.5
    assert ran[1][1] - started >= 0.6
