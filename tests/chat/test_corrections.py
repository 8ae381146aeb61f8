"""Corrections: a sender replaces the text of their own recent message with a new signed
envelope bound to it; every version is kept (chat/corrections.py).

Each refusal has its test, and a refusal changes nothing: no row, no event,
no audit entry. Every frame emitted, live or replayed, is validated against
core/outbound.py.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase

from audit.models import AuditEvent
from chat.actions import check_history, check_post_message, check_set_thread_closed, events_after
from chat.corrections import check_correct_message
from chat.models import Correction, Event, Message
from chat.redaction import check_redact_message
from core import outbound, protocol
from core.errors import RoundsError
from core.events import EventKind
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

FIXED = b"Wound edges clean, dressing changed at 14:30."


def correction(
    h: Hospital, who: str, corrects: str, cmid: str, plaintext: bytes = FIXED
) -> dict[str, Any]:
    """A correction's envelope as `who`'s client seals it: like a post, plus `corrects`."""
    return sealed(h, who, h.thread, cmid, plaintext, corrects=corrects)


def posts(h: Hospital, who: str = "surgeon_bob", cmid: str = "bob-correct-0001") -> int:
    body = sealed(h, who, h.thread, cmid)
    return check_post_message(h.user(who), h.thread.pk, cmid, body)["message_id"]


def correct(h: Hospital, who: str, message_id: int, cmid: str, envelope: dict[str, Any]):
    """Correct through the action: (ack, frames published on commit, validated)."""
    with TestCase.captureOnCommitCallbacks() as callbacks:
        ack = check_correct_message(h.user(who), message_id, cmid, envelope)
    return ack, published_frames(callbacks)


def state() -> dict[str, Any]:
    """Everything a correction could change."""
    return {
        "messages": list(
            Message.objects.order_by("pk").values_list("pk", "header", "ciphertext", "correction")
        ),
        "corrections": Correction.objects.count(),
        "events": list(Event.objects.order_by("pk").values_list("pk", "kind")),
        "audit": AuditEvent.objects.filter(action="message.corrected").count(),
    }


def assert_refused(h: Hospital, who: str, message_id: int, cmid: str, envelope, code: str):
    before = state()
    with pytest.raises(RoundsError) as caught:
        correct(h, who, message_id, cmid, envelope)
    assert caught.value.code == code, caught.value
    assert caught.value.message
    assert state() == before
    return caught.value


# --- The action ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_sender_corrects_twice_and_every_version_is_kept(hospital):
    h = hospital
    message_id = posts(h)
    original = Message.objects.get(pk=message_id)
    h.plastic.refresh_from_db()
    event_seq = h.plastic.event_seq

    first = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-00000001")
    ack, frames = correct(h, "surgeon_bob", message_id, "bob-fix-00000001", first)
    second = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-00000002", b"v3")
    ack2, frames2 = correct(h, "surgeon_bob", message_id, "bob-fix-00000002", second)

    rows = list(Correction.objects.filter(message_id=message_id).order_by("version"))
    assert [(r.version, r.client_msg_id, r.sender_id) for r in rows] == [
        (2, "bob-fix-00000001", h.surgeon_bob.pk),
        (3, "bob-fix-00000002", h.surgeon_bob.pk),
    ]
    assert [{"header": r.header, "ciphertext": r.ciphertext} for r in rows] == [first, second]
    assert ack == {
        "message_id": message_id,
        "thread": h.thread.pk,
        "seq": 1,
        "correction_id": rows[0].pk,
        "version": 2,
        "corrected_at": rows[0].created_at.isoformat(),
    }
    assert ack2["version"] == 3
    # Nothing overwritten: the original envelope stays as it came.
    message = Message.objects.get(pk=message_id)
    assert (message.header, message.ciphertext, message.body_hash) == (
        original.header,
        original.ciphertext,
        original.body_hash,
    )
    latest = {
        "id": rows[1].pk,
        "version": 3,
        "client_msg_id": "bob-fix-00000002",
        "envelope": second,
        "corrected_at": ack2["corrected_at"],
    }
    assert message.correction == latest
    assert frames == [
        {
            "type": "message.corrected",
            "department": h.plastic.pk,
            "event_seq": event_seq + 1,
            "message": {"id": message_id, "thread": h.thread.pk, "seq": 1},
            "by": {"id": h.surgeon_bob.pk, "username": "surgeon_bob"},
            "correction": {
                "id": rows[0].pk,
                "version": 2,
                "client_msg_id": "bob-fix-00000001",
                "envelope": first,
                "corrected_at": ack["corrected_at"],
            },
        }
    ]
    assert frames2[0]["event_seq"] == event_seq + 2 and frames2[0]["correction"] == latest
    event = Event.objects.get(department=h.plastic, seq=event_seq + 1)
    assert (event.kind, event.message_id) == (EventKind.MESSAGE_CORRECTED, message_id)
    entries = AuditEvent.objects.filter(action="message.corrected").order_by("pk")
    assert [(e.actor_id, e.department_id, e.object_type, e.object_id) for e in entries] == [
        (h.surgeon_bob.pk, h.plastic.pk, "message", str(message_id))
    ] * 2
    assert entries[0].data == {
        "thread_id": h.thread.pk,
        "seq": 1,
        "version": 2,
        "correction_id": rows[0].pk,
        "bytes": len(FIXED) + 16,
    }
    # History: the message as posted, with its latest version beside it.
    for reader in ("nurse_alice", "surgeon_bob", "head_carol"):
        (shown,) = check_history(h.user(reader), h.thread.pk, None, 50)["messages"]
        outbound.MessageOut.model_validate(shown)
        assert shown["envelope"] == {"header": original.header, "ciphertext": original.ciphertext}
        assert shown["correction"] == latest


@pytest.mark.django_db
def test_a_retry_answers_the_first_correction_once(hospital):
    h = hospital
    message_id = posts(h)
    body = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-retry001")
    ack, _ = correct(h, "surgeon_bob", message_id, "bob-fix-retry001", body)
    before = state()
    again, frames = correct(h, "surgeon_bob", message_id, "bob-fix-retry001", body)
    assert again == {**ack, "duplicate": True}
    assert frames == []
    assert state() == before
    # The same id for other content is a conflict, not a second version.
    other = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-retry001", b"other")
    assert_refused(
        h, "surgeon_bob", message_id, "bob-fix-retry001", other, "client_msg_id_conflict"
    )


@pytest.mark.django_db
def test_someone_elses_message_is_refused_forbidden(hospital):
    h = hospital
    message_id = posts(h)
    for who in ("nurse_alice", "head_carol"):
        body = correction(h, who, "bob-correct-0001", f"{who[:5]}-fix-0001")
        error = assert_refused(h, who, message_id, f"{who[:5]}-fix-0001", body, "forbidden")
        assert "sender" in error.message


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["nurse_ines", "compliance_dan", "intern_erin"])
def test_outsiders_meet_no_such_message(hospital, who):
    h = hospital
    message_id = posts(h)
    body = correction(h, "surgeon_bob", "bob-correct-0001", "out-fix-00000001")
    assert_refused(h, who, message_id, "out-fix-00000001", body, "not_found")
    assert_refused(h, who, 999_999, "out-fix-00000001", body, "not_found")


@pytest.mark.django_db
def test_after_the_window_the_message_stands(hospital, settings):
    h = hospital
    message_id = posts(h)
    Message.objects.filter(pk=message_id).update(
        created_at=Message.objects.get(pk=message_id).created_at - timedelta(seconds=901)
    )
    body = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-late0001")
    error = assert_refused(
        h, "surgeon_bob", message_id, "bob-fix-late0001", body, "correction_window_closed"
    )
    assert error.data["window_seconds"] == 900
    # The window is a setting.
    settings.ROUNDS_CORRECTION_WINDOW_SECONDS = 3600
    ack, _ = correct(h, "surgeon_bob", message_id, "bob-fix-late0001", body)
    assert ack["version"] == 2


@pytest.mark.django_db
def test_a_redacted_message_cannot_be_corrected(hospital):
    h = hospital
    message_id = posts(h)
    check_redact_message(h.surgeon_bob, message_id)
    body = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-redact01")
    assert_refused(h, "surgeon_bob", message_id, "bob-fix-redact01", body, "message_redacted")


@pytest.mark.django_db
def test_a_closed_thread_is_frozen_for_corrections_heads_too(hospital):
    h = hospital
    bob_id = posts(h)
    carol_id = posts(h, "head_carol", "carol-correct-01")
    check_set_thread_closed(h.head_carol, h.thread.pk, True)
    body = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-closed01")
    assert_refused(h, "surgeon_bob", bob_id, "bob-fix-closed01", body, "thread_closed")
    body = correction(h, "head_carol", "carol-correct-01", "carol-fix-close1")
    assert_refused(h, "head_carol", carol_id, "carol-fix-close1", body, "thread_closed")


@pytest.mark.django_db
def test_an_envelope_bound_to_another_message_is_refused(hospital):
    h = hospital
    first = posts(h)
    posts(h, cmid="bob-correct-0002")
    # Signed by Bob, but naming his other message: the server cannot splice it either.
    elsewhere = correction(h, "surgeon_bob", "bob-correct-0002", "bob-fix-splice01")
    assert_refused(h, "surgeon_bob", first, "bob-fix-splice01", elsewhere, "envelope_mismatch")
    # A plain post's envelope names no message: not a correction.
    plain = sealed(h, "surgeon_bob", h.thread, "bob-fix-plain001")
    assert_refused(h, "surgeon_bob", first, "bob-fix-plain001", plain, "envelope_mismatch")
    # And a correction's envelope is not a post.
    with pytest.raises(RoundsError) as caught:
        check_post_message(h.surgeon_bob, h.thread.pk, "bob-fix-splice01", elsewhere)
    assert caught.value.code == "envelope_mismatch"
    # Nor may it reuse a message's client_msg_id.
    reused = correction(h, "surgeon_bob", "bob-correct-0001", "bob-correct-0002")
    assert_refused(h, "surgeon_bob", first, "bob-correct-0002", reused, "client_msg_id_conflict")


@pytest.mark.django_db
def test_the_envelope_is_checked_like_a_posts(hospital):
    h = hospital
    message_id = posts(h)
    body = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-sig00001")
    forged = {
        **body,
        "header": {
            **body["header"],
            "sig": sealed(h, "nurse_alice", h.thread, "alice-0000001")["header"]["sig"],
        },
    }
    assert_refused(h, "surgeon_bob", message_id, "bob-fix-sig00001", forged, "bad_signature")
    # Sealed by Alice for Bob's message: refused as another sender's.
    alices = correction(h, "nurse_alice", "bob-correct-0001", "bob-fix-sig00001")
    assert_refused(h, "surgeon_bob", message_id, "bob-fix-sig00001", alices, "bad_signature")


@pytest.mark.django_db
def test_a_redaction_hides_every_version_from_members_but_keeps_them(hospital):
    h = hospital
    message_id = posts(h)
    h.plastic.refresh_from_db()
    after = h.plastic.event_seq
    body = correction(h, "surgeon_bob", "bob-correct-0001", "bob-fix-hide0001")
    correct(h, "surgeon_bob", message_id, "bob-fix-hide0001", body)
    check_redact_message(h.surgeon_bob, message_id)

    (tombstone,) = check_history(h.nurse_alice, h.thread.pk, None, 50)["messages"]
    outbound.MessageOut.model_validate(tombstone)
    assert tombstone["correction"] is None and tombstone["envelope"] is None
    replayed = [frame for _, frame in events_after(h.nurse_alice, h.plastic.pk, after)]
    assert [f["type"] for f in replayed] == ["message.corrected", "message.redacted"]
    for frame in replayed:
        outbound.validate_outbound(frame)
    assert replayed[0]["correction"]["envelope"] is None
    assert body["ciphertext"] not in str(replayed)
    assert Correction.objects.get(message_id=message_id).ciphertext == body["ciphertext"]


def test_the_schema_keeps_a_correction_off_a_tombstone():
    base = {
        "id": 1,
        "thread": 1,
        "seq": 1,
        "sender": {"id": 1, "username": "surgeon_bob"},
        "client_msg_id": "bob-00000001",
        "created_at": "2026-12-05T10:00:00+00:00",
        "attachments": [],
        "correction": None,
    }
    envelope = {"header": {"v": 2}, "ciphertext": "AAAA"}
    outbound.MessageOut.model_validate({**base, "envelope": envelope, "redacted": None})
    fix = {
        "id": 1,
        "version": 2,
        "client_msg_id": "bob-00000002",
        "envelope": envelope,
        "corrected_at": "2026-12-05T10:01:00+00:00",
    }
    outbound.MessageOut.model_validate(
        {**base, "envelope": envelope, "redacted": None, "correction": fix}
    )
    tombstone = {"at": "2026-12-05T10:02:00+00:00", "by": 1}
    for wrong in (
        {"envelope": None, "redacted": tombstone, "correction": fix},
        {"envelope": envelope, "redacted": None, "correction": {**fix, "envelope": None}},
    ):
        with pytest.raises(ValueError):
            outbound.MessageOut.model_validate({**base, **wrong})


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "message.correct", "id": "c", "message": 1, "client_msg_id": "short"},
        {"type": "message.correct", "id": "c", "message": 1, "client_msg_id": "abcdefgh"},
        {
            "type": "message.correct",
            "id": "c",
            "message": "1",
            "client_msg_id": "abcdefgh",
            "envelope": {"header": {}, "ciphertext": "AAAA"},
        },
        {
            "type": "message.correct",
            "id": "c",
            "message": 1,
            "client_msg_id": "abcdefgh",
            "envelope": {"header": {}, "ciphertext": "AAAA"},
            "extra": 1,
        },
    ],
)
def test_a_malformed_correct_frame_does_not_parse(frame):
    with pytest.raises(ValueError):
        protocol.parse_inbound(frame)


# --- Over the socket ------------------------------------------------------------


def correct_frame(message_id: int, envelope: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message.correct",
        "message": message_id,
        "client_msg_id": envelope["header"]["client_msg_id"],
        "envelope": envelope,
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_a_correction_over_the_socket_reaches_every_member(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ines, _ = await connect_as(h.nurse_ines)
    posted = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-ws-correct-1"))
    assert (await recv(alice))["type"] == "message.new"

    body = correction(h, "surgeon_bob", "bob-ws-correct-1", "bob-ws-fix-00001")
    ack = await ok(bob, correct_frame(posted["message_id"], body))
    assert (ack["message_id"], ack["thread"], ack["seq"], ack["version"]) == (
        posted["message_id"],
        h.thread.pk,
        1,
        2,
    )
    for member in (bob, alice):
        event = await recv(member)
        outbound.validate_outbound(event)
        assert event["type"] == "message.corrected"
        assert event["message"] == {"id": posted["message_id"], "thread": h.thread.pk, "seq": 1}
        assert event["correction"]["envelope"] == body
        assert event["correction"]["corrected_at"] == ack["corrected_at"]
    await assert_quiet(ines)

    # A retry: the first answer, and nobody hears of it twice.
    again = await ok(bob, correct_frame(posted["message_id"], body))
    assert again == {**ack, "duplicate": True}
    # Alice may not correct Bob's message; Ines does not see it.
    alices = correction(h, "nurse_alice", "bob-ws-correct-1", "alice-ws-fix-001")
    await expect_refused(alice, correct_frame(posted["message_id"], alices), "forbidden")
    await expect_refused(ines, correct_frame(posted["message_id"], alices), "not_found")
    await assert_quiet(bob, alice, ines)

    page = await ok(alice, {"type": "history.fetch", "thread": h.thread.pk})
    (shown,) = page["messages"]
    outbound.MessageOut.model_validate(shown)
    assert shown["correction"]["envelope"] == body and shown["correction"]["version"] == 2
    for communicator in (ines, alice, bob):
        await assert_alive(communicator)
        await communicator.disconnect()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_resume_replays_the_correction_once(live_hospital):
    h = live_hospital
    key = str(h.plastic.pk)
    alice, hello = await connect_as(h.nurse_alice)
    saved = hello["cursor"]
    await alice.disconnect()

    bob, _ = await connect_as(h.surgeon_bob)
    posted = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-resume-fix1"))
    body = correction(h, "surgeon_bob", "bob-resume-fix1", "bob-resume-fix-c1")
    ack = await ok(bob, correct_frame(posted["message_id"], body))
    assert (await recv(bob))["type"] == "message.corrected"

    alice, hello = await connect_as(h.nurse_alice)
    assert hello["cursor"] == {key: saved[key] + 2}
    replayed, result = await resume(alice, saved)
    assert [f["type"] for f in replayed] == ["message.new", "message.corrected"]
    for frame in replayed:
        outbound.validate_outbound(frame)
    # The message comes as it is now, with its correction; then the event itself.
    assert replayed[0]["message"]["correction"]["envelope"] == body
    assert replayed[1]["correction"]["envelope"] == body
    assert replayed[1]["correction"]["corrected_at"] == ack["corrected_at"]
    # Exactly once: a second resume from the new cursor replays nothing.
    assert await resume(alice, result["cursor"]) == ([], result)
    await assert_quiet(alice, bob)
    await alice.disconnect()
    await bob.disconnect()
