"""Consults across departments on the server (chat/consults.py, docs/advice.md "Consults"):
asked by a clinician of another department, opened by whoever it was put to, read and
written by its guest in that one thread only, ended, and every refusal on the way."""

import pytest
from django.test import override_settings

from advice.models import AdviceRequest
from chat.actions import check_history, check_post_message
from chat.consults import (
    check_end_consult,
    check_open_consult,
    check_publish_thread_key,
    consult_keys,
    my_consults,
)
from chat.models import Consult, ThreadKeyWrap
from core.crypto import (
    SignedStatement,
    open_envelope,
    replay_membership_chain,
    unwrap_room_key,
    verify_key_version,
)
from core.crypto.keyversions import SignedKeyVersion
from core.crypto.roomkeys import WrapRecord
from core.errors import RoundsError
from rooms.chain import chain_statements, check_post_statement
from rooms.keys import department_keys
from tests.support.audit import audit_entries
from tests.support.consults import (
    ask_consult,
    consult_sealed,
    open_body,
    open_consult,
    unguest_statement,
)
from tests.support.hospital import sealed

pytestmark = pytest.mark.django_db


def refused(code: str, call, *args, **kwargs) -> RoundsError:
    with pytest.raises(RoundsError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value
    return caught.value


def test_a_consult_is_asked_pending_and_routed_to_whom_it_was_put(hospital):
    thread_id = ask_consult(hospital)
    consult = Consult.objects.get(thread_id=thread_id)
    assert consult.state == "pending" and consult.guest == hospital.nurse_ines
    request = AdviceRequest.objects.get(thread_id=thread_id)
    assert request.department == hospital.plastic and request.message is None
    assert request.holder == hospital.surgeon_bob
    # Until it opens, the guest reads nothing of the thread.
    refused("not_found", check_history, hospital.nurse_ines, thread_id, None, 50)
    assert audit_entries("consult.requested", object_id=str(thread_id))


def test_asking_again_answers_the_consult_already_asked(hospital):
    from advice.actions import check_request_consult

    thread_id = ask_consult(hospital)
    made, created = check_request_consult(
        hospital.nurse_ines,
        hospital.plastic.pk,
        hospital.patient.pk,
        "urgent",
        hospital.surgeon_bob.pk,
        None,
    )
    assert not created and made["thread"] == thread_id


def test_a_member_asks_in_the_department_not_as_a_guest(hospital):
    from advice.actions import check_request_consult

    refused(
        "invalid_request",
        check_request_consult,
        hospital.nurse_alice,
        hospital.plastic.pk,
        hospital.patient.pk,
        "urgent",
        hospital.surgeon_bob.pk,
        None,
    )


def test_opening_signs_the_guest_in_with_the_thread_keys_first_version(hospital):
    key = open_consult(hospital)
    thread_id = key.thread
    consult = Consult.objects.get(thread_id=thread_id)
    assert (consult.state, consult.key_version, consult.opened_by) == (
        "open",
        1,
        hospital.surgeon_bob,
    )
    # The chain as clients replay it: the guest of that thread, no member.
    chain = replay_membership_chain(
        [SignedStatement.from_dict(s) for s in chain_statements(hospital.plastic.pk)],
        admin_key=hospital.admin_key.public,
        keys=[pair.public for pair in hospital.keys.values()],
    )
    ines = hospital.nurse_ines.pk
    assert chain.guests_of(thread_id)[ines].fingerprint == hospital.keys["nurse_ines"].fingerprint
    assert ines not in chain.members
    # The guest opens their wrap into the thread key, checked against its version.
    keys = consult_keys(hospital.nurse_ines, thread_id)
    record = verify_key_version(SignedKeyVersion.from_dict(keys["versions"][0]["signed"]), chain)
    opened = unwrap_room_key(
        WrapRecord.from_dict(keys["my_wraps"][0]),
        recipient=hospital.keys["nurse_ines"],
        wrapper=hospital.keys["surgeon_bob"].public,
    )
    assert opened == key and record.thread == thread_id
    assert ThreadKeyWrap.objects.filter(recipient_user=None).count() == 1  # compliance
    assert audit_entries("consult.opened", object_id=str(thread_id))
    assert my_consults(hospital.nurse_ines)["consults"][0]["state"] == "open"


def test_the_guest_and_the_members_write_under_the_thread_key_and_read_each_other(hospital):
    key = open_consult(hospital)
    thread_id = key.thread
    asked = consult_sealed(hospital, "nurse_ines", thread_id, key, "ines-consult-01", b"Wound?")
    check_post_message(hospital.nurse_ines, thread_id, "ines-consult-01", asked)
    answer = consult_sealed(hospital, "surgeon_bob", thread_id, key, "bob-consult-01", b"Coming")
    check_post_message(hospital.surgeon_bob, thread_id, "bob-consult-01", answer)
    page = check_history(hospital.nurse_ines, thread_id, None, 50)
    chain = replay_membership_chain(
        hospital.chains[hospital.plastic.pk],
        admin_key=hospital.admin_key.public,
        keys=[pair.public for pair in hospital.keys.values()],
    )
    record = verify_key_version(
        SignedKeyVersion.from_dict(
            consult_keys(hospital.nurse_ines, thread_id)["versions"][0]["signed"]
        ),
        chain,
    )
    texts = [
        open_envelope(m["envelope"], chain=chain, record=record, room_key=key)[1]
        for m in page["messages"]
    ]
    assert texts == [b"Wound?", b"Coming"]


def test_the_guest_reaches_nothing_else_of_the_department(hospital):
    key = open_consult(hospital)
    refused("not_found", check_history, hospital.nurse_ines, hospital.thread.pk, None, 50)
    refused("not_found", department_keys, hospital.nurse_ines, hospital.plastic.pk)
    other = sealed(hospital, "nurse_ines", hospital.thread, "ines-other-01")
    refused(
        "not_found",
        check_post_message,
        hospital.nurse_ines,
        hospital.thread.pk,
        "ines-other-01",
        other,
    )
    # Nor a thread key of the consult in another thread.
    assert key.thread != hospital.thread.pk


def test_envelopes_under_the_wrong_key_are_refused_both_ways(hospital):
    key = open_consult(hospital)
    thread_id = key.thread
    # A room-key envelope in the consult's thread (a member's, then the guest's).
    room = sealed(
        hospital, "surgeon_bob", thread_id, "bob-room-in-consult", department=hospital.plastic
    )
    refused(
        "envelope_mismatch",
        check_post_message,
        hospital.surgeon_bob,
        thread_id,
        "bob-room-in-consult",
        room,
    )
    # A thread key's envelope in an ordinary thread: the key names another thread, so it
    # cannot even be made; re-keyed for that thread it is still a thread-key envelope.
    from core.crypto import RoomKey

    stray = RoomKey.generate(department=hospital.plastic.pk, version=1, thread=hospital.thread.pk)
    body = consult_sealed(hospital, "surgeon_bob", hospital.thread.pk, stray, "bob-thread-key-01")
    refused(
        "envelope_mismatch",
        check_post_message,
        hospital.surgeon_bob,
        hospital.thread.pk,
        "bob-thread-key-01",
        body,
    )


def test_who_may_open_a_consult(hospital):
    thread_id = ask_consult(hospital)
    body, _, _ = open_body(hospital, thread_id, opener="nurse_alice")
    refused("forbidden", check_open_consult, hospital.nurse_alice, thread_id, **body)
    body, _, _ = open_body(hospital, thread_id, opener="nurse_ines")
    refused("forbidden", check_open_consult, hospital.nurse_ines, thread_id, **body)
    refused("not_found", check_open_consult, hospital.head_grace, thread_id, **body)
    # A head may, though it was not put to them.
    body, _, _ = open_body(hospital, thread_id, opener="head_carol")
    check_open_consult(hospital.head_carol, thread_id, **body)
    refused("conflict", check_open_consult, hospital.head_carol, thread_id, **body)


def test_a_forged_or_incomplete_opening_is_refused_and_nothing_is_kept(hospital):
    thread_id = ask_consult(hospital)
    body, _, _ = open_body(hospital, thread_id, guest="nurse_alice")  # another subject
    refused("invalid_request", check_open_consult, hospital.surgeon_bob, thread_id, **body)
    body, _, _ = open_body(hospital, thread_id)
    without_guest = {**body, "wraps": body["wraps"][:3] + body["wraps"][4:]}
    refused(
        "wraps_incomplete", check_open_consult, hospital.surgeon_bob, thread_id, **without_guest
    )
    tampered = {**body, "statement": {**body["statement"], "sig": body["key_version"]["sig"]}}
    refused("bad_signature", check_open_consult, hospital.surgeon_bob, thread_id, **tampered)
    assert Consult.objects.get(thread_id=thread_id).state == "pending"
    assert len(chain_statements(hospital.plastic.pk)) == len(hospital.chains[hospital.plastic.pk])


def test_a_guest_statement_goes_through_the_consult_only(hospital):
    thread_id = ask_consult(hospital)
    body, _, _ = open_body(hospital, thread_id)
    refused(
        "invalid_request",
        check_post_statement,
        hospital.surgeon_bob,
        hospital.plastic.pk,
        body["statement"],
    )


def test_ending_signs_the_guest_out_and_requires_a_new_version(hospital):
    key = open_consult(hospital)
    thread_id = key.thread
    out = unguest_statement(hospital, thread_id, signer="nurse_ines")
    ended = check_end_consult(hospital.nurse_ines, thread_id, out.to_dict())
    hospital.chains[hospital.plastic.pk].append(out)
    assert ended["state"] == "ended"
    # The guest reads the consult as it was, no longer writes in it.
    assert check_history(hospital.nurse_ines, thread_id, None, 50)["messages"] == []
    late = consult_sealed(hospital, "nurse_ines", thread_id, key, "ines-late-01")
    refused("forbidden", check_post_message, hospital.nurse_ines, thread_id, "ines-late-01", late)
    # A member must make a new version first, without the guest.
    stale = consult_sealed(hospital, "surgeon_bob", thread_id, key, "bob-stale-01")
    refused(
        "key_rotation_required",
        check_post_message,
        hospital.surgeon_bob,
        thread_id,
        "bob-stale-01",
        stale,
    )
    from core.crypto import RoomKey
    from rooms.demo import new_key_version

    v2 = RoomKey.generate(department=hospital.plastic.pk, version=2, thread=thread_id)
    members = ("head_carol", "surgeon_bob", "nurse_alice")
    signed, wraps = new_key_version(
        v2,
        at=hospital.head(hospital.plastic),
        creator_user=hospital.surgeon_bob.pk,
        creator=hospital.keys["surgeon_bob"],
        recipients=[hospital.keys[n].public for n in members] + [hospital.compliance_key.public],
    )
    wire = [w.to_dict() for w in wraps]
    refused(
        "forbidden",
        check_publish_thread_key,
        hospital.nurse_ines,
        thread_id,
        signed.to_dict(),
        wire,
    )
    check_publish_thread_key(hospital.surgeon_bob, thread_id, signed.to_dict(), wire)
    fresh = consult_sealed(hospital, "surgeon_bob", thread_id, v2, "bob-fresh-01")
    check_post_message(hospital.surgeon_bob, thread_id, "bob-fresh-01", fresh)
    again = unguest_statement(hospital, thread_id, signer="surgeon_bob")
    refused("conflict", check_end_consult, hospital.surgeon_bob, thread_id, again.to_dict())
    assert audit_entries("consult.ended", object_id=str(thread_id))


@override_settings(ROUNDS_CONSULT_READ_AFTER="none")
def test_with_no_reading_after_the_former_guest_finds_nothing(hospital):
    key = open_consult(hospital)
    out = unguest_statement(hospital, key.thread, signer="surgeon_bob")
    check_end_consult(hospital.surgeon_bob, key.thread, out.to_dict())
    refused("not_found", check_history, hospital.nurse_ines, key.thread, None, 50)


def test_a_member_removed_requires_a_new_thread_key_version(hospital):
    from rooms.actions import check_remove_member

    key = open_consult(hospital)
    check_remove_member(hospital.head_carol, hospital.plastic.pk, hospital.nurse_alice.pk)
    stale = consult_sealed(hospital, "surgeon_bob", key.thread, key, "bob-after-removal")
    assert Consult.objects.get(thread_id=key.thread).rotation_required
    refused(
        "key_rotation_required",
        check_post_message,
        hospital.surgeon_bob,
        key.thread,
        "bob-after-removal",
        stale,
    )


def test_the_guest_corrects_and_removes_their_own_message_while_it_is_open(hospital):
    from chat.corrections import check_correct_message
    from chat.redaction import check_redact_message

    key = open_consult(hospital)
    asked = consult_sealed(hospital, "nurse_ines", key.thread, key, "ines-fix-0001", b"Flap?")
    posted = check_post_message(hospital.nurse_ines, key.thread, "ines-fix-0001", asked)
    fixed = encrypt_correction(hospital, key, "ines-fix-0002", "ines-fix-0001")
    answer = check_correct_message(
        hospital.nurse_ines, posted["message_id"], "ines-fix-0002", fixed
    )
    assert answer["version"] == 2
    # A room-key correction in the consult is refused, as a room-key post is.
    room = sealed(
        hospital,
        "nurse_ines",
        key.thread,
        "ines-fix-0003",
        department=hospital.plastic,
        corrects="ines-fix-0001",
    )
    refused(
        "envelope_mismatch",
        check_correct_message,
        hospital.nurse_ines,
        posted["message_id"],
        "ines-fix-0003",
        room,
    )
    check_redact_message(hospital.nurse_ines, posted["message_id"], "wrong photo")
    page = check_history(hospital.surgeon_bob, key.thread, None, 50)
    assert page["messages"][0]["redacted"] is not None


def encrypt_correction(hospital, key, cmid: str, corrects: str) -> dict:
    from core.crypto import encrypt_message

    return encrypt_message(
        b"Flap dusky?",
        room_key=key,
        head=hospital.head(hospital.plastic),
        thread=key.thread,
        sender=hospital.nurse_ines.pk,
        client_msg_id=cmid,
        signer=hospital.keys["nurse_ines"],
        corrects=corrects,
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"statement": "guest", "key_version": {}, "wraps": []}, 400, "invalid_request"),
        ({"statement": {}, "key_version": {}, "wraps": []}, 400, "invalid_request"),
        ({"key_version": {}, "wraps": []}, 400, "invalid_request"),
    ],
    ids=["not an object", "empty statement", "no statement"],
)
def test_a_malformed_opening_gets_a_typed_refusal(hospital, body, status, code):
    from tests.support.api import Api, assert_refused

    thread_id = ask_consult(hospital)
    response = Api(hospital.surgeon_bob).post(f"/api/consults/{thread_id}/open", body)
    assert_refused(response, status, code)
    assert Consult.objects.get(thread_id=thread_id).state == "pending"


def test_too_many_wraps_are_refused_before_anything_is_checked(hospital):
    from tests.support.api import Api, assert_refused

    thread_id = ask_consult(hospital)
    body, _, _ = open_body(hospital, thread_id)
    flood = {**body, "wraps": body["wraps"] * 300}
    response = Api(hospital.surgeon_bob).post(f"/api/consults/{thread_id}/open", flood)
    assert_refused(response, 400, "invalid_request")
    assert Consult.objects.get(thread_id=thread_id).state == "pending"


def test_a_replayed_opening_is_a_conflict_and_keeps_one_statement(hospital):
    thread_id = ask_consult(hospital)
    body, _, _ = open_body(hospital, thread_id)
    check_open_consult(hospital.surgeon_bob, thread_id, **body)
    before = len(chain_statements(hospital.plastic.pk))
    refused("conflict", check_open_consult, hospital.surgeon_bob, thread_id, **body)
    assert len(chain_statements(hospital.plastic.pk)) == before
