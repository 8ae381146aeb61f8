"""Every action writes its audit entry in its own transaction.

Either both the action's rows and its audit entry are committed, or neither
is: an action refused before it writes, an action that fails after its audit
entry was inserted, and a caller's transaction that rolls back all leave no
audit row behind. Once committed, the inline sealer (tests run with
ROUNDS_AUDIT_SEALER=inline) chains the entry straight away.
"""

import pytest
from django.db import transaction

from audit.actions import verify_chain
from audit.models import AuditEvent
from chat import actions as chat_actions
from chat import posting
from chat.models import Event, Message, Receipt, Thread
from core.errors import RoundsError
from rooms import actions as room_actions
from rooms.models import Membership
from tests.support import sealed


class Boom(Exception):
    """Stands for any failure after the audit entry was written (a lost lock, a bug)."""


def entries(action: str, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


@pytest.fixture
def fail_after_audit(monkeypatch):
    """Make `module.record` insert the entry, then raise, inside the action's transaction."""

    def arm(module) -> None:
        real = module.record

        def record_then_fail(*args, **kwargs):
            real(*args, **kwargs)
            raise Boom

        monkeypatch.setattr(module, "record", record_then_fail)

    return arm


# --- What each action records --------------------------------------------------


@pytest.mark.django_db
def test_a_post_records_ids_and_sizes_never_content(hospital):
    h = hospital
    body = sealed(h, "surgeon_bob", h.thread, "bob-00000001", bytes(44))  # 44 + 16-byte tag
    ack = chat_actions.check_post_message(h.surgeon_bob, h.thread.pk, "bob-00000001", body)
    (entry,) = entries("message.posted", object_id=str(ack["message_id"]))
    assert entry.object_type == "message"
    assert (entry.actor_id, entry.actor_username) == (h.surgeon_bob.pk, "surgeon_bob")
    assert entry.department_id == h.plastic.pk
    assert entry.data == {"thread_id": h.thread.pk, "seq": 1, "bytes": 60}
    assert body["ciphertext"] not in entry.canonical().decode()


@pytest.mark.django_db
def test_a_retried_post_is_audited_once(hospital):
    h = hospital
    body = sealed(h, "surgeon_bob", h.thread, "bob-00000002")
    first = chat_actions.check_post_message(h.surgeon_bob, h.thread.pk, "bob-00000002", body)
    again = chat_actions.check_post_message(h.surgeon_bob, h.thread.pk, "bob-00000002", body)
    assert again["duplicate"] and again["message_id"] == first["message_id"]
    assert len(entries("message.posted", object_id=str(first["message_id"]))) == 1


@pytest.mark.django_db
def test_a_receipt_is_recorded_once_and_never_backwards(hospital):
    h = hospital
    for n in range(3):
        chat_actions.check_post_message(
            h.surgeon_bob,
            h.thread.pk,
            f"bob-r{n:07d}",
            sealed(h, "surgeon_bob", h.thread, f"bob-r{n:07d}"),
        )
    chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 2)
    chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 1)  # behind: a no-op
    chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 3)
    rows = entries("receipt.read", actor_id=h.nurse_alice.pk)
    assert [r.data for r in rows] == [{"up_to_seq": 2}, {"up_to_seq": 3}]
    assert {(r.object_type, r.object_id) for r in rows} == {("thread", str(h.thread.pk))}


@pytest.mark.django_db
def test_membership_changes_are_recorded(hospital):
    h = hospital
    room_actions.check_admit_member(h.head_carol, h.plastic.pk, h.nurse_ines.pk, "member")
    room_actions.check_set_role(h.head_carol, h.plastic.pk, h.nurse_ines.pk, "head")
    room_actions.check_remove_member(h.head_carol, h.plastic.pk, h.nurse_ines.pk)
    for action, data in (
        ("member.admitted", {"role": "member"}),
        ("member.role_changed", {"role": "head"}),
        ("member.removed", {"role": "head"}),
    ):
        (entry,) = entries(action, object_id=str(h.nurse_ines.pk), department_id=h.plastic.pk)
        assert entry.actor_username == "head_carol"
        assert (entry.object_type, entry.data) == ("user", data)


@pytest.mark.django_db
def test_thread_creation_closing_and_reopening_are_recorded(hospital):
    h = hospital
    thread = chat_actions.check_create_thread(h.nurse_alice, h.plastic.pk, h.patient.pk, "Pre-op")
    chat_actions.check_set_thread_closed(h.head_carol, thread["id"], closed=True)
    chat_actions.check_set_thread_closed(h.head_carol, thread["id"], closed=True)  # already
    chat_actions.check_set_thread_closed(h.head_carol, thread["id"], closed=False)
    (created,) = entries("thread.created", object_id=str(thread["id"]))
    assert created.actor_username == "nurse_alice"
    assert created.data == {"patient_id": h.patient.pk}
    assert len(entries("thread.closed", object_id=str(thread["id"]))) == 1
    assert len(entries("thread.reopened", object_id=str(thread["id"]))) == 1


# --- Refused actions leave nothing -----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "attempt",
    [
        "outsider_posts",
        "post_to_closed_thread",
        "receipt_beyond_last",
        "member_closes_thread",
        "member_admits",
        "outsider_creates_thread",
    ],
)
def test_a_refused_action_writes_no_audit_row(hospital, attempt):
    h = hospital
    chat_actions.do_set_thread_closed(h.head_grace, h.vascular_thread, True)
    before = AuditEvent.objects.count()
    with pytest.raises(RoundsError):
        match attempt:
            case "outsider_posts":
                chat_actions.check_post_message(
                    h.nurse_ines,
                    h.thread.pk,
                    "ines-0000001",
                    sealed(h, "nurse_ines", h.thread, "ines-0000001"),
                )
            case "post_to_closed_thread":
                chat_actions.check_post_message(
                    h.nurse_ines,
                    h.vascular_thread.pk,
                    "ines-0000002",
                    sealed(h, "nurse_ines", h.vascular_thread, "ines-0000002"),
                )
            case "receipt_beyond_last":
                chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 5)
            case "member_closes_thread":
                chat_actions.check_set_thread_closed(h.nurse_alice, h.thread.pk, closed=True)
            case "member_admits":
                room_actions.check_admit_member(h.surgeon_bob, h.plastic.pk, h.nurse_ines.pk)
            case "outsider_creates_thread":
                chat_actions.check_create_thread(h.nurse_ines, h.plastic.pk, h.patient.pk, "x")
    assert AuditEvent.objects.count() == before


# --- An action that fails after its audit entry leaves no trace at all --------------


@pytest.mark.django_db
def test_a_post_that_fails_after_auditing_rolls_back_message_event_and_entry(hospital, monkeypatch):
    """A post's message, event and audit entry are written together (chat/post_rows.py):
    a failure after them leaves none of the three."""
    h = hospital
    events_before = Event.objects.count()
    write_posts = posting.write_posts

    def write_then_fail(*args, **kwargs):
        write_posts(*args, **kwargs)
        raise Boom

    monkeypatch.setattr(posting, "write_posts", write_then_fail)
    with pytest.raises(Boom):
        chat_actions.check_post_message(
            h.surgeon_bob,
            h.thread.pk,
            "bob-boom0001",
            sealed(h, "surgeon_bob", h.thread, "bob-boom0001"),
        )
    assert not Message.objects.filter(client_msg_id="bob-boom0001").exists()
    assert Event.objects.count() == events_before
    assert entries("message.posted") == []
    h.thread.refresh_from_db()
    assert h.thread.last_seq == 0


@pytest.mark.django_db
def test_a_receipt_that_fails_after_auditing_leaves_no_entry(hospital, fail_after_audit):
    h = hospital
    chat_actions.check_post_message(
        h.surgeon_bob,
        h.thread.pk,
        "bob-00000010",
        sealed(h, "surgeon_bob", h.thread, "bob-00000010"),
    )
    fail_after_audit(chat_actions)
    with pytest.raises(Boom):
        chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 1)
    assert not Receipt.objects.filter(user=h.nurse_alice).exists()
    assert entries("receipt.read") == []


@pytest.mark.django_db
def test_a_thread_creation_that_fails_after_auditing_leaves_no_entry(hospital, fail_after_audit):
    h = hospital
    threads_before = Thread.objects.count()
    created_before = len(entries("thread.created"))
    fail_after_audit(chat_actions)
    with pytest.raises(Boom):
        chat_actions.check_create_thread(h.surgeon_bob, h.plastic.pk, h.patient.pk, "Dressing")
    assert Thread.objects.count() == threads_before
    assert len(entries("thread.created")) == created_before


@pytest.mark.django_db
def test_a_thread_closing_that_fails_after_auditing_leaves_no_entry(hospital, fail_after_audit):
    h = hospital
    fail_after_audit(chat_actions)
    with pytest.raises(Boom):
        chat_actions.check_set_thread_closed(h.head_carol, h.thread.pk, closed=True)
    h.thread.refresh_from_db()
    assert not h.thread.is_closed
    assert entries("thread.closed") == []


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["admit", "remove", "set_role"])
def test_a_membership_change_that_fails_after_auditing_leaves_no_entry(
    hospital, fail_after_audit, change
):
    h = hospital
    before = AuditEvent.objects.count()
    memberships = list(Membership.objects.values_list("pk", "role", "removed_at").order_by("pk"))
    fail_after_audit(room_actions)
    with pytest.raises(Boom):
        match change:
            case "admit":
                room_actions.check_admit_member(h.head_carol, h.plastic.pk, h.nurse_ines.pk)
            case "remove":
                room_actions.check_remove_member(h.head_carol, h.plastic.pk, h.nurse_alice.pk)
            case "set_role":
                room_actions.check_set_role(h.head_carol, h.plastic.pk, h.nurse_alice.pk, "head")
    assert AuditEvent.objects.count() == before
    after = list(Membership.objects.values_list("pk", "role", "removed_at").order_by("pk"))
    assert after == memberships


@pytest.mark.django_db
def test_a_callers_rolled_back_transaction_takes_the_entries_with_it(hospital):
    h = hospital
    before = AuditEvent.objects.count()
    with pytest.raises(Boom), transaction.atomic():
        chat_actions.check_post_message(
            h.surgeon_bob,
            h.thread.pk,
            "bob-outer001",
            sealed(h, "surgeon_bob", h.thread, "bob-outer001"),
        )
        chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 1)
        raise Boom
    assert AuditEvent.objects.count() == before
    assert not Message.objects.filter(client_msg_id="bob-outer001").exists()


# --- Committed entries are sealed on commit ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_committed_entries_are_sealed_when_their_transaction_commits(live_hospital):
    h = live_hospital
    ack = chat_actions.check_post_message(
        h.surgeon_bob,
        h.thread.pk,
        "bob-commit01",
        sealed(h, "surgeon_bob", h.thread, "bob-commit01"),
    )
    chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, ack["seq"])
    (posted,) = entries("message.posted", object_id=str(ack["message_id"]))
    (read,) = entries("receipt.read", actor_id=h.nurse_alice.pk)
    assert posted.seal.seq < read.seal.seq
    report = verify_chain()
    assert report.ok and report.unsealed == 0
    assert report.head_seq == AuditEvent.objects.count()


# --- A head's reason for closing a thread or removing a member ----------------------


@pytest.mark.django_db
def test_a_reason_for_closing_or_removing_is_kept_in_the_trail_only(hospital):
    h = hospital
    closed = chat_actions.check_set_thread_closed(
        h.head_carol, h.thread.pk, closed=True, reason="  Patient discharged home  "
    )
    room_actions.check_remove_member(
        h.head_carol, h.plastic.pk, h.surgeon_bob.pk, reason="Moved to the burns unit"
    )
    (close,) = entries("thread.closed", object_id=str(h.thread.pk))
    assert close.data == {"reason": "Patient discharged home"}
    (removal,) = entries("member.removed", object_id=str(h.surgeon_bob.pk))
    assert removal.data == {"role": "member", "reason": "Moved to the burns unit"}
    # Members never see it: neither the answer nor the events carry it.
    assert "reason" not in closed
    for event in Event.objects.filter(department=h.plastic):
        assert "reason" not in event.payload


@pytest.mark.django_db
def test_a_reason_over_200_characters_is_refused_before_anything_changes(hospital):
    h = hospital
    before = AuditEvent.objects.count()
    with pytest.raises(RoundsError) as closing:
        chat_actions.check_set_thread_closed(h.head_carol, h.thread.pk, True, reason="x" * 201)
    with pytest.raises(RoundsError) as removing:
        room_actions.check_remove_member(
            h.head_carol, h.plastic.pk, h.surgeon_bob.pk, reason="x" * 201
        )
    assert closing.value.code == removing.value.code == "invalid_request"
    assert AuditEvent.objects.count() == before
    h.thread.refresh_from_db()
    assert not h.thread.is_closed
    assert Membership.objects.active().filter(user=h.surgeon_bob, department=h.plastic).exists()
