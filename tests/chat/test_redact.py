"""Redaction: a sender's "delete" or a head's moderation hides a message from members,
and keeps it, ciphertext and all, for compliance (chat/redaction.py).

Each refusal has its test, and a refusal changes nothing: no row, no event,
no audit entry. Every frame emitted, live or replayed, is validated against
core/outbound.py.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import TestCase
from django.utils import timezone

from audit.models import AuditEvent
from chat.actions import check_history, check_post_message, check_set_thread_closed
from chat.models import Event, Message, Thread
from chat.redaction import check_redact_message
from core import outbound, protocol
from core.errors import RoundsError
from core.events import EventKind
from rooms.actions import do_remove_member
from tests.support import Hospital, sealed
from tests.support.sockets import (
    assert_alive,
    assert_quiet,
    connect_as,
    expect_refused,
    ok,
    post,
    recv,
    resume,
)
from tests.support.uploads import published_frames

REASON = "Posted in the wrong patient's thread"


def bob_posts(h: Hospital, cmid: str = "bob-redact-0001") -> int:
    body = sealed(h, "surgeon_bob", h.thread, cmid)
    return check_post_message(h.surgeon_bob, h.thread.pk, cmid, body)["message_id"]


def redact(h: Hospital, who: str, message_id: int, reason: str | None = None):
    """Redact through the action: (ack, frames published on commit, validated)."""
    with TestCase.captureOnCommitCallbacks() as callbacks:
        ack = check_redact_message(h.user(who), message_id, reason)
    return ack, published_frames(callbacks)


def state() -> dict[str, Any]:
    """Everything a redaction could change."""
    return {
        "messages": list(
            Message.objects.order_by("pk").values_list(
                "pk", "ciphertext", "attachments", "redacted_at", "redacted_by_id"
            )
        ),
        "events": list(Event.objects.order_by("pk").values_list("pk", "kind")),
        "audit": AuditEvent.objects.filter(action="message.redacted").count(),
        "threads": list(Thread.objects.order_by("pk").values_list("pk", "last_seq", "closed_at")),
    }


def refused(h: Hospital, who: str, message_id: int, code: str) -> RoundsError:
    before = state()
    with pytest.raises(RoundsError) as caught:
        redact(h, who, message_id, REASON)
    assert caught.value.code == code, caught.value
    assert state() == before
    return caught.value


# --- The action ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_sender_redacts_their_own_message_which_is_kept(hospital):
    h = hospital
    message_id = bob_posts(h)
    stored = Message.objects.get(pk=message_id)
    h.plastic.refresh_from_db()
    event_seq = h.plastic.event_seq

    ack, frames = redact(h, "surgeon_bob", message_id)

    message = Message.objects.get(pk=message_id)
    assert ack == {
        "message_id": message_id,
        "thread": h.thread.pk,
        "seq": 1,
        "redacted_at": message.redacted_at.isoformat(),
    }
    assert message.redacted_by_id == h.surgeon_bob.pk
    # Retained for compliance: the row, its envelope and its number are untouched.
    assert (message.header, message.ciphertext, message.body_hash, message.seq) == (
        stored.header,
        stored.ciphertext,
        stored.body_hash,
        stored.seq,
    )
    assert frames == [
        {
            "type": "message.redacted",
            "department": h.plastic.pk,
            "event_seq": event_seq + 1,
            "message": {"id": message_id, "thread": h.thread.pk, "seq": 1},
            "by": {"id": h.surgeon_bob.pk, "username": "surgeon_bob"},
            "redacted_at": ack["redacted_at"],
        }
    ]
    event = Event.objects.get(department=h.plastic, seq=event_seq + 1)
    assert (event.kind, event.message_id) == (EventKind.MESSAGE_REDACTED, message_id)
    entry = AuditEvent.objects.get(action="message.redacted")
    assert (entry.actor_id, entry.department_id, entry.object_type, entry.object_id) == (
        h.surgeon_bob.pk,
        h.plastic.pk,
        "message",
        str(message_id),
    )
    assert entry.data == {
        "thread_id": h.thread.pk,
        "seq": 1,
        "sender_id": h.surgeon_bob.pk,
        "as": "sender",
        "reason": "",
    }
    # Receipts and numbering go on as before: the next post is number 2.
    assert bob_posts(h, "bob-redact-0002") == message_id + 1
    assert Message.objects.get(pk=message_id + 1).seq == 2


@pytest.mark.django_db
def test_a_head_redacts_a_members_message_with_a_reason(hospital):
    h = hospital
    message_id = bob_posts(h)
    ack, frames = redact(h, "head_carol", message_id, f"  {REASON}  ")
    message = Message.objects.get(pk=message_id)
    assert message.redacted_by_id == h.head_carol.pk
    assert ack["redacted_at"] == message.redacted_at.isoformat()
    assert frames[0]["by"] == {"id": h.head_carol.pk, "username": "head_carol"}
    entry = AuditEvent.objects.get(action="message.redacted")
    assert entry.actor_id == h.head_carol.pk
    # The head's note is kept in the trail; members never see it.
    assert (entry.data["as"], entry.data["reason"]) == ("head", REASON)
    assert "reason" not in frames[0] and "reason" not in ack


@pytest.mark.django_db
def test_another_member_is_refused_forbidden(hospital):
    h = hospital
    message_id = bob_posts(h)
    error = refused(h, "nurse_alice", message_id, "forbidden")
    assert error.http_status == 403


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["nurse_ines", "head_grace", "intern_erin", "compliance_dan"])
def test_outsiders_and_removed_members_meet_no_such_message(hospital, who):
    h = hospital
    message_id = bob_posts(h)
    foreign = refused(h, who, message_id, "not_found")
    missing = refused(h, who, 999_999, "not_found")
    assert foreign.as_dict() == missing.as_dict()
    assert foreign.http_status == 404


@pytest.mark.django_db
def test_a_sender_who_left_the_department_can_no_longer_redact(hospital):
    h = hospital
    message_id = bob_posts(h)
    do_remove_member(h.head_carol, h.plastic.pk, h.surgeon_bob.pk)
    error = refused(h, "surgeon_bob", message_id, "not_found")
    assert error.http_status == 404
    assert Message.objects.get(pk=message_id).redacted_at is None


@pytest.mark.django_db
def test_an_unknown_message_is_not_found_even_for_a_head(hospital):
    error = refused(hospital, "head_carol", 999_999, "not_found")
    assert error.http_status == 404


@pytest.mark.django_db
def test_a_reason_over_200_characters_is_refused(hospital):
    h = hospital
    message_id = bob_posts(h)
    before = state()
    with pytest.raises(RoundsError) as caught:
        redact(h, "surgeon_bob", message_id, "x" * 201)
    assert caught.value.code == "invalid_request"
    assert state() == before
    ack, _ = redact(h, "surgeon_bob", message_id, "x" * 200)
    assert ack["message_id"] == message_id


@pytest.mark.django_db
def test_redacting_again_answers_the_first_redaction(hospital):
    h = hospital
    message_id = bob_posts(h)
    first, frames = redact(h, "surgeon_bob", message_id, REASON)
    assert len(frames) == 1
    before = state()
    for who in ("surgeon_bob", "head_carol"):
        again, frames = redact(h, who, message_id, "another reason")
        assert again == first
        assert frames == []
    assert state() == before
    assert AuditEvent.objects.filter(action="message.redacted").count() == 1
    # A member who may not redact is refused even once it is done.
    refused(h, "nurse_alice", message_id, "forbidden")
    refused(h, "nurse_ines", message_id, "not_found")


@pytest.mark.django_db
def test_a_closed_thread_is_moderated_by_heads_only(hospital):
    h = hospital
    mine = bob_posts(h)
    carols = check_post_message(
        h.head_carol,
        h.thread.pk,
        "carol-redact-01",
        sealed(h, "head_carol", h.thread, "carol-redact-01"),
    )["message_id"]
    other = bob_posts(h, "bob-redact-0003")
    check_set_thread_closed(h.head_carol, h.thread.pk, closed=True)

    error = refused(h, "surgeon_bob", mine, "thread_closed")
    assert error.http_status == 409
    ack, frames = redact(h, "head_carol", mine, REASON)
    assert frames[0]["type"] == "message.redacted"
    # Once redacted, the sender's retry gets the first answer, closed thread or not.
    assert redact(h, "surgeon_bob", mine)[0] == ack
    # A head's own message, in a closed thread: a head may.
    assert redact(h, "head_carol", carols)[1][0]["message"]["id"] == carols
    refused(h, "nurse_alice", other, "forbidden")


@pytest.mark.django_db
def test_history_shows_a_tombstone_without_the_ciphertext(hospital):
    h = hospital
    redacted_id = bob_posts(h)
    kept_id = bob_posts(h, "bob-redact-0002")
    ack, _ = redact(h, "surgeon_bob", redacted_id)

    for reader in ("nurse_alice", "surgeon_bob", "head_carol"):
        page = check_history(h.user(reader), h.thread.pk, None, 50)
        for message in page["messages"]:
            outbound.MessageOut.model_validate(message)
        tombstone, kept = page["messages"]
        assert tombstone["id"] == redacted_id
        assert tombstone["envelope"] is None and tombstone["attachments"] == []
        assert tombstone["redacted"] == {"at": ack["redacted_at"], "by": h.surgeon_bob.pk}
        assert (tombstone["seq"], tombstone["client_msg_id"]) == (1, "bob-redact-0001")
        assert kept["id"] == kept_id
        assert kept["redacted"] is None
        assert kept["envelope"]["ciphertext"] == Message.objects.get(pk=kept_id).ciphertext
    # The database still holds the ciphertext members no longer get.
    assert Message.objects.get(pk=redacted_id).ciphertext not in str(page)


def test_the_schema_refuses_a_tombstone_with_content_and_a_message_without():
    base = {
        "id": 1,
        "thread": 1,
        "seq": 1,
        "sender": {"id": 1, "username": "surgeon_bob"},
        "client_msg_id": "bob-00000001",
        "created_at": timezone.now().isoformat(),
        "attachments": [],
        "correction": None,
    }
    envelope = {"header": {"v": 1}, "ciphertext": "AAAA"}
    tombstone = {"at": timezone.now().isoformat(), "by": 1}
    outbound.MessageOut.model_validate({**base, "envelope": envelope, "redacted": None})
    outbound.MessageOut.model_validate({**base, "envelope": None, "redacted": tombstone})
    for wrong in (
        {"envelope": None, "redacted": None},
        {"envelope": envelope, "redacted": tombstone},
        {"envelope": envelope},
    ):
        with pytest.raises(ValueError):
            outbound.MessageOut.model_validate({**base, **wrong})


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message.redact", "id": "r", "message": 1, "reason": "x" * 201},
        {"type": "message.redact", "id": "r"},
        {"type": "message.redact", "id": "r", "message": "1"},
        {"type": "message.redact", "id": "r", "message": 0},
        {"type": "message.redact", "id": "r", "message": 1, "extra": True},
    ],
)
def test_a_malformed_redact_frame_does_not_parse(frame):
    with pytest.raises(ValueError):
        protocol.parse_inbound(frame)


def test_a_redact_frame_parses_with_or_without_a_reason():
    for extra in ({}, {"reason": None}, {"reason": ""}, {"reason": "x" * 200}):
        frame = protocol.parse_inbound({"type": "message.redact", "id": "r", "message": 7, **extra})
        assert isinstance(frame, protocol.MessageRedact) and frame.message == 7


# --- Over the socket ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_redaction_over_the_socket_reaches_every_member(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ines, _ = await connect_as(h.nurse_ines)
    posted = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-ws-redact-1"))
    assert (await recv(alice))["type"] == "message.new"

    ack = await ok(bob, {"type": "message.redact", "message": posted["message_id"]})
    assert set(ack) == {"message_id", "thread", "seq", "redacted_at"}
    assert (ack["message_id"], ack["thread"], ack["seq"]) == (posted["message_id"], h.thread.pk, 1)
    for member in (bob, alice):
        event = await recv(member)
        assert event["type"] == "message.redacted"
        assert event["message"] == {"id": posted["message_id"], "thread": h.thread.pk, "seq": 1}
        assert event["by"] == {"id": h.surgeon_bob.pk, "username": "surgeon_bob"}
        assert event["redacted_at"] == ack["redacted_at"]
    await assert_quiet(ines)

    # Again: the first answer, and nobody hears of it twice.
    again = await ok(bob, {"type": "message.redact", "message": posted["message_id"], "reason": ""})
    assert again == ack
    await assert_quiet(bob, alice, ines)

    page = await ok(alice, {"type": "history.fetch", "thread": h.thread.pk})
    (tombstone,) = page["messages"]
    outbound.MessageOut.model_validate(tombstone)
    assert tombstone["envelope"] is None
    assert tombstone["redacted"] == {"at": ack["redacted_at"], "by": h.surgeon_bob.pk}
    stored = await Message.objects.aget(pk=posted["message_id"])
    assert stored.ciphertext and stored.redacted_at is not None
    for communicator in (ines, alice, bob):
        await communicator.disconnect()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_refused_redactions_over_the_socket_change_nothing(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ines, _ = await connect_as(h.nurse_ines)
    posted = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-ws-redact-2"))
    assert (await recv(alice))["type"] == "message.new"
    before = await database_sync_to_async(state)()
    message_id = posted["message_id"]

    error = await expect_refused(
        alice, {"type": "message.redact", "message": message_id}, "forbidden"
    )
    assert error["message"]
    foreign = await expect_refused(
        ines, {"type": "message.redact", "message": message_id}, "not_found"
    )
    missing = await expect_refused(
        ines, {"type": "message.redact", "message": 999_999}, "not_found"
    )
    assert {k: v for k, v in foreign.items() if k != "id"} == {
        k: v for k, v in missing.items() if k != "id"
    }
    too_long = {"type": "message.redact", "message": message_id, "reason": "x" * 201}
    await expect_refused(bob, too_long, "invalid_frame")
    await assert_quiet(bob, alice, ines)
    assert await database_sync_to_async(state)() == before
    for communicator in (alice, ines, bob):
        await assert_alive(communicator)
    for communicator in (ines, alice, bob):
        await communicator.disconnect()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_resume_replays_the_tombstone_and_the_redaction_once(live_hospital):
    h = live_hospital
    key = str(h.plastic.pk)
    alice, hello = await connect_as(h.nurse_alice)
    saved = hello["cursor"]
    await alice.disconnect()

    bob, _ = await connect_as(h.surgeon_bob)
    first = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-resume-red1"))
    second = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-resume-red2"))
    carol_ack = await database_sync_to_async(check_redact_message)(
        h.head_carol, first["message_id"], REASON
    )
    assert (await recv(bob))["type"] == "message.redacted"

    alice, hello = await connect_as(h.nurse_alice)
    assert hello["cursor"] == {key: saved[key] + 3}
    replayed, result = await resume(alice, saved)
    assert [f["event_seq"] for f in replayed] == [saved[key] + 1, saved[key] + 2, saved[key] + 3]
    assert [f["type"] for f in replayed] == ["message.new", "message.new", "message.redacted"]
    tombstone, kept = replayed[0]["message"], replayed[1]["message"]
    assert tombstone["id"] == first["message_id"]
    assert tombstone["envelope"] is None and tombstone["attachments"] == []
    assert tombstone["redacted"] == {"at": carol_ack["redacted_at"], "by": h.head_carol.pk}
    assert kept["id"] == second["message_id"] and kept["redacted"] is None
    assert kept["envelope"] is not None
    assert replayed[2]["message"]["id"] == first["message_id"]
    assert replayed[2]["by"] == {"id": h.head_carol.pk, "username": "head_carol"}
    assert result == {"cursor": hello["cursor"], "ignored": []}
    # Exactly once: a second resume from the new cursor replays nothing.
    assert await resume(alice, result["cursor"]) == ([], result)
    await assert_quiet(alice, bob)
    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.django_db(transaction=True)
def test_racing_redactions_make_one_event_and_one_entry(live_hospital):
    """The sender and a head redact at the same moment: one wins, the other gets its answer."""
    h = live_hospital
    message_id = bob_posts(h)
    barrier = threading.Barrier(2)

    def attempt(who: str) -> dict[str, Any]:
        try:
            barrier.wait(timeout=5)
            return check_redact_message(h.user(who), message_id, REASON)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        acks = list(pool.map(attempt, ["surgeon_bob", "head_carol"]))
    assert acks[0] == acks[1]
    assert Event.objects.filter(kind=EventKind.MESSAGE_REDACTED).count() == 1
    assert AuditEvent.objects.filter(action="message.redacted").count() == 1
    h.plastic.refresh_from_db()
    assert Event.objects.filter(department=h.plastic).count() == h.plastic.event_seq
