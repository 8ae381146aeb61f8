"""The server verifies every envelope it stores, through the full ASGI stack.

It holds no room key, so it cannot read a message; what it can check, it
does: the envelope (v2) is signed by the poster's published identity, and
the signed header names the thread, the poster, the frame's client_msg_id,
the thread's department, the department's current room key version and its
commitment, and a head of the department's chain no older than that
version's. Each refusal is a typed error, the socket stays up, and nothing
is stored. And whatever is posted, no plaintext and no room key ever
reaches a table.
"""

import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from accounts.models import IdentityKey
from audit.models import AuditEvent
from chat.actions import check_create_thread
from chat.models import Message, Thread
from core.crypto import (
    ChainHead,
    IdentityKeyPair,
    RoomKey,
    b64encode,
    decrypt_message,
    encrypt_message,
)
from rooms import actions as room_actions
from rooms.models import KeyWrap
from tests.support import (
    PLAINTEXT,
    Hospital,
    keep_statement,
    make_user,
    rotate_room_key,
    sealed,
)
from tests.support.sockets import (
    assert_alive,
    assert_quiet,
    connect_as,
    expect_refused,
    ok,
    post,
    post_frame,
    recv,
    stored_counts,
)
from tests.support.tamper import flip_b64

pytestmark = pytest.mark.django_db(transaction=True)


def _state() -> dict[str, Any]:
    return {
        "posted": AuditEvent.objects.filter(action="message.posted").count(),
        "last_seqs": sorted(Thread.objects.values_list("pk", "last_seq")),
    }


async def expect_refused_unstored(communicator, frame: dict[str, Any], code: str) -> dict[str, Any]:
    """The frame is refused with `code`; no message, event, receipt or audit entry; socket up."""
    before = (await stored_counts(), await database_sync_to_async(_state)())
    error = await expect_refused(communicator, frame, code)
    assert error["message"], error
    assert (await stored_counts(), await database_sync_to_async(_state)()) == before
    await assert_alive(communicator)
    return error


def flip_id(client_msg_id: str) -> str:
    """Another valid client_msg_id, one character different."""
    last = "b" if client_msg_id[-1] == "a" else "a"
    return client_msg_id[:-1] + last


def tampered(body: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of the envelope with one byte of `where` changed, nothing re-signed."""
    copy = json.loads(json.dumps(body))
    header = copy["header"]
    match where.split(":"):
        case ["ciphertext", index]:
            copy["ciphertext"] = flip_b64(copy["ciphertext"], int(index))
        case ["nonce" | "sig" | "key_commitment" as name, index]:
            header[name] = flip_b64(header[name], int(index))
        case ["chain_head"]:
            header["chain_head"] = ("1" if header["chain_head"][0] == "0" else "0") + header[
                "chain_head"
            ][1:]
        case ["sent_at"]:
            header["sent_at"] = header["sent_at"].replace("20", "19", 1)
        case ["client_msg_id"]:
            header["client_msg_id"] = flip_id(header["client_msg_id"])
        case [name]:
            header[name] += 1  # room, thread, key_version, chain_seq, sender
    return copy


@pytest.fixture
def h(live_hospital: Hospital) -> Hospital:
    """The hospital, plus a second Plastic surgery thread and Ines in both departments."""
    hospital = live_hospital
    hospital.second_thread = check_create_thread(
        hospital.surgeon_bob, hospital.plastic.pk, hospital.patient.pk, "Second opinion"
    )
    room_actions.do_admit_member(
        hospital.head_carol, hospital.plastic.pk, hospital.nurse_ines, "member"
    )
    return hospital


# --- Accepted ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_signed_envelope_is_accepted_and_relayed_as_it_came(h):
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    plaintext = b"Drain removed, 20 ml serous. Plan: discharge tomorrow."
    body = sealed(h, "surgeon_bob", h.thread, "bob-valid-0001", plaintext)
    sent = json.dumps(body, sort_keys=True)

    ack = await post(bob, body)
    pushed = await recv(alice)
    assert pushed["type"] == "message.new"
    relayed = pushed["message"]["envelope"]
    # Every field as it came: the ciphertext string, each header value, nothing added.
    assert json.dumps(relayed, sort_keys=True) == sent
    assert relayed["ciphertext"] == body["ciphertext"]
    opened = decrypt_message(
        relayed, room_key=h.room_keys[h.plastic.pk], sender_key=h.keys["surgeon_bob"].public
    )
    assert opened == plaintext

    page = await ok(alice, {"type": "history.fetch", "thread": h.thread.pk})
    (stored,) = page["messages"]
    assert stored["id"] == ack["message_id"]
    assert json.dumps(stored["envelope"], sort_keys=True) == sent
    row = await Message.objects.aget(pk=ack["message_id"])
    assert (row.header, row.ciphertext) == (body["header"], body["ciphertext"])
    await assert_quiet(bob, alice)
    await bob.disconnect()
    await alice.disconnect()


# --- Who signs ---------------------------------------------------------------------------


async def test_a_member_without_a_published_identity_is_refused(h):
    def admit_fred():
        fred = make_user("surgeon_fred")
        room_actions.do_admit_member(h.head_carol, h.plastic.pk, fred, "member")
        return fred

    fred = await database_sync_to_async(admit_fred)()
    # Fred's client signs with keys the server has never seen.
    body = encrypt_message(
        b"hello",
        room_key=h.room_keys[h.plastic.pk],
        head=h.head(h.plastic),
        thread=h.thread.pk,
        sender=fred.pk,
        client_msg_id="fred-nokey-001",
        signer=IdentityKeyPair.generate(),
    )
    communicator, _ = await connect_as(fred)
    await expect_refused_unstored(communicator, post_frame(body), "invalid_key")
    await communicator.disconnect()


async def test_a_replaced_identity_no_longer_signs(h):
    """Bob's devices lost their keys; he published a new identity. The old one is refused."""
    body = sealed(h, "surgeon_bob", h.thread, "bob-oldkey-001")
    new = IdentityKeyPair.generate()

    def replace():
        from accounts.keys import check_publish_identity

        check_publish_identity(h.surgeon_bob, new.public.to_dict(), replace=True)

    await database_sync_to_async(replace)()
    assert await IdentityKey.objects.filter(user=h.surgeon_bob).acount() == 2
    bob, _ = await connect_as(h.surgeon_bob)
    await expect_refused_unstored(bob, post_frame(body), "bad_signature")
    h.keys["surgeon_bob"] = new
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-newkey-001"))
    await bob.disconnect()


TAMPERED = [
    "sig:0",
    "sig:63",
    "nonce:0",
    "nonce:23",
    "ciphertext:0",
    "ciphertext:20",
    "ciphertext:-1",  # the last byte: the Poly1305 tag
    # Every header field is signed; `v` too, but another `v` is refused before the
    # signature is checked, as an unsupported version (see the malformed envelopes).
    "key_commitment:0",
    "key_commitment:31",
    "chain_head",
    "sent_at",
    "room",
    "thread",
    "key_version",
    "chain_seq",
    "sender",
    "client_msg_id",
]


async def test_a_flipped_byte_anywhere_is_a_bad_signature(h):
    bob, _ = await connect_as(h.surgeon_bob)
    body = sealed(h, "surgeon_bob", h.thread, "bob-flip-00001", b"x" * 40)
    header_fields = set(body["header"]) - {"v"}
    assert header_fields <= {where.split(":")[0] for where in TAMPERED}
    for where in TAMPERED:
        changed = tampered(body, where)
        assert changed != body, where
        # The frame names what the envelope was made for: only the signature can tell.
        frame = post_frame(changed, thread=h.thread.pk, client_msg_id="bob-flip-00001")
        error = await expect_refused_unstored(bob, frame, "bad_signature")
        assert "data" not in error or not error["data"], (where, error)
    # The untouched envelope still goes through.
    await post(bob, body)
    await bob.disconnect()


def _malformed(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    header = body["header"]
    cases = [
        ("v=1", {**body, "header": {**header, "v": 1}}),
        ("v=3", {**body, "header": {**header, "v": 3}}),
        ("v=true", {**body, "header": {**header, "v": True}}),
        ("extra header field", {**body, "header": {**header, "kind": "text"}}),
        ("short sig", {**body, "header": {**header, "sig": b64encode(bytes(32))}}),
        ("ciphertext under a tag", {**body, "ciphertext": b64encode(bytes(8))}),
        ("url-safe base64", {**body, "header": {**header, "nonce": "-_" * 16}}),
        ("string id", {**body, "header": {**header, "thread": str(header["thread"])}}),
    ]
    for name in header:
        missing = {k: v for k, v in header.items() if k != name}
        cases.append((f"missing {name}", {**body, "header": missing}))
    return cases


async def test_a_malformed_envelope_is_invalid_envelope(h):
    bob, _ = await connect_as(h.surgeon_bob)
    body = sealed(h, "surgeon_bob", h.thread, "bob-shape-0001")
    for name, changed in _malformed(body):
        frame = post_frame(changed, thread=h.thread.pk, client_msg_id="bob-shape-0001")
        error = await expect_refused_unstored(bob, frame, "invalid_envelope")
        assert error["message"], name
    await post(bob, body)
    await bob.disconnect()


# --- What it was made for ------------------------------------------------------------------


async def test_an_envelope_for_another_thread_of_the_department_is_a_mismatch(h):
    bob, _ = await connect_as(h.surgeon_bob)
    second = h.second_thread["id"]
    for_first = sealed(h, "surgeon_bob", h.thread, "bob-thread-001")
    for_second = sealed(h, "surgeon_bob", second, "bob-thread-002", department=h.plastic)
    await expect_refused_unstored(bob, post_frame(for_first, thread=second), "envelope_mismatch")
    await expect_refused_unstored(
        bob, post_frame(for_second, thread=h.thread.pk), "envelope_mismatch"
    )
    # Each where it belongs.
    await post(bob, for_first)
    await post(bob, for_second)
    await bob.disconnect()


@pytest.mark.slow
async def test_an_envelope_for_another_department_is_a_mismatch(h):
    """Ines is in both departments: what she writes for one cannot be posted in the other."""
    ines, _ = await connect_as(h.nurse_ines)
    vascular = sealed(h, "nurse_ines", h.vascular_thread, "ines-dept-0001")
    await expect_refused_unstored(
        ines, post_frame(vascular, thread=h.thread.pk), "envelope_mismatch"
    )
    # Bound to the Plastic surgery thread, but under the Vascular surgery room key.
    wrong_room = sealed(h, "nurse_ines", h.thread, "ines-dept-0002", department=h.vascular)
    assert wrong_room["header"]["room"] == h.vascular.pk
    await expect_refused_unstored(ines, post_frame(wrong_room), "envelope_mismatch")
    # Bob, who is not in Vascular surgery, signs one for his own thread with its room.
    bob, _ = await connect_as(h.surgeon_bob)
    bob_wrong_room = sealed(h, "surgeon_bob", h.thread, "bob-dept-00001", department=h.vascular)
    await expect_refused_unstored(bob, post_frame(bob_wrong_room), "envelope_mismatch")
    await post(ines, sealed(h, "nurse_ines", h.thread, "ines-dept-0003"))
    await recv(bob)
    await post(ines, vascular)
    await assert_quiet(bob)
    await ines.disconnect()
    await bob.disconnect()


async def test_a_non_member_gets_not_found_whatever_the_envelope_names(h):
    """The room is checked after membership: nothing tells an outsider the thread exists."""
    grace, _ = await connect_as(h.head_grace)
    for department in (h.plastic, h.vascular):
        body = sealed(h, "head_grace", h.thread, "grace-room-001", department=department)
        error = await expect_refused_unstored(grace, post_frame(body), "not_found")
        assert error["message"] == "Thread not found."
    await grace.disconnect()


async def test_an_envelope_in_someone_elses_name_is_refused(h):
    bob, _ = await connect_as(h.surgeon_bob)
    # Signed by Bob, but naming Alice as its sender.
    as_alice = encrypt_message(
        b"I agree",
        room_key=h.room_keys[h.plastic.pk],
        head=h.head(h.plastic),
        thread=h.thread.pk,
        sender=h.nurse_alice.pk,
        client_msg_id="bob-forge-0001",
        signer=h.keys["surgeon_bob"],
    )
    await expect_refused_unstored(bob, post_frame(as_alice), "envelope_mismatch")
    # Alice's own envelope, signed by her, posted by Bob: his key does not verify it.
    alices = sealed(h, "nurse_alice", h.thread, "alice-own-0001")
    await expect_refused_unstored(bob, post_frame(alices), "bad_signature")
    # Where it belongs, it is fine.
    alice, _ = await connect_as(h.nurse_alice)
    await post(alice, alices)
    await bob.disconnect()
    await alice.disconnect()


async def test_an_envelope_for_another_client_msg_id_is_a_mismatch(h):
    bob, _ = await connect_as(h.surgeon_bob)
    body = sealed(h, "surgeon_bob", h.thread, "bob-cmid-00001")
    frame = post_frame(body, client_msg_id="bob-cmid-00002")
    await expect_refused_unstored(bob, frame, "envelope_mismatch")
    await post(bob, body)
    await bob.disconnect()


# --- Room key versions -------------------------------------------------------------------


def _wrapped_for(h: Hospital, version: int) -> set[str]:
    wraps = KeyWrap.objects.filter(
        key_version__department=h.plastic, key_version__version=version
    ).select_related("recipient_user")
    return {w.recipient_user.username if w.recipient_user else "compliance" for w in wraps}


@pytest.mark.slow
async def test_a_removal_requires_a_new_room_key_version(h):
    bob, _ = await connect_as(h.surgeon_bob)
    carol, _ = await connect_as(h.head_carol)
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-key-v1-01"))
    assert (await recv(carol))["type"] == "message.new"
    future = sealed(h, "surgeon_bob", h.thread, "bob-key-v2-00", key_version=2)
    await expect_refused_unstored(bob, post_frame(future), "invalid_envelope")

    await database_sync_to_async(room_actions.check_remove_member)(
        h.head_carol, h.plastic.pk, h.nurse_alice.pk
    )
    for communicator in (bob, carol):
        assert (await recv(communicator))["type"] == "member.removed"

    # Alice still holds version 1: nothing more may be written under it.
    v1 = sealed(h, "surgeon_bob", h.thread, "bob-key-v1-02")
    error = await expect_refused_unstored(bob, post_frame(v1), "key_rotation_required")
    assert error["data"]["current_version"] == 1

    # Bob publishes version 2, for Carol, Ines, himself and the compliance key.
    await database_sync_to_async(rotate_room_key)(h, h.plastic, h.surgeon_bob)
    for communicator in (bob, carol):
        frame = await recv(communicator)
        assert frame["type"] == "key.rotated" and frame["key_version"] == 2
    recipients = await database_sync_to_async(_wrapped_for)(h, 2)
    assert recipients == {"head_carol", "surgeon_bob", "nurse_ines", "compliance"}
    v2 = sealed(h, "surgeon_bob", h.thread, "bob-key-v2-01")
    assert v2["header"]["key_version"] == 2
    ack = await post(bob, v2)
    pushed = await recv(carol)
    assert pushed["message"]["id"] == ack["message_id"]
    opened = decrypt_message(
        pushed["message"]["envelope"],
        room_key=h.room_key(h.plastic.pk, 2),
        sender_key=h.keys["surgeon_bob"].public,
    )
    assert opened == PLAINTEXT

    # Version 1 stays refused, a version not published yet is no version at all.
    v1_again = sealed(h, "surgeon_bob", h.thread, "bob-key-v1-03", key_version=1)
    error = await expect_refused_unstored(bob, post_frame(v1_again), "key_rotation_required")
    assert error["data"]["current_version"] == 2
    v3 = sealed(h, "surgeon_bob", h.thread, "bob-key-v3-01", key_version=3)
    await expect_refused_unstored(bob, post_frame(v3), "invalid_envelope")
    await assert_quiet(bob, carol)
    await bob.disconnect()
    await carol.disconnect()


async def test_while_a_rotation_is_due_an_unpublished_version_is_refused_for_rotation(h):
    """Rotation comes first (rule order): a version the client made but has not published
    yet is told to rotate, not that its envelope is invalid."""
    await database_sync_to_async(room_actions.check_remove_member)(
        h.head_carol, h.plastic.pk, h.nurse_alice.pk
    )
    bob, _ = await connect_as(h.surgeon_bob)
    unpublished = sealed(h, "surgeon_bob", h.thread, "bob-key-v2-02", key_version=2)
    error = await expect_refused_unstored(bob, post_frame(unpublished), "key_rotation_required")
    assert error["data"]["current_version"] == 1
    await bob.disconnect()


async def test_a_department_without_a_room_key_requires_one_first(h):
    def new_department():
        department = room_actions.do_create_department(
            h.admin_zoe, "Burns unit", "burns-unit", h.head_carol
        )
        thread = check_create_thread(h.head_carol, department["id"], h.patient.pk, "Graft")
        return department, thread

    _, thread = await database_sync_to_async(new_department)()
    carol, _ = await connect_as(h.head_carol)
    # Carol's client made up version 1 but never published it.
    body = sealed(h, "head_carol", thread, "carol-nokey-01", key_version=1)
    error = await expect_refused_unstored(carol, post_frame(body), "key_rotation_required")
    assert error["data"]["current_version"] == 0
    await carol.disconnect()


# --- Format 2: the version's commitment, the chain's position ---------------------------------


def _bobs_envelope(h: Hospital, client_msg_id: str, *, head: ChainHead, room_key=None) -> dict:
    return encrypt_message(
        PLAINTEXT,
        room_key=room_key or h.room_keys[h.plastic.pk],
        head=head,
        thread=h.thread.pk,
        sender=h.surgeon_bob.pk,
        client_msg_id=client_msg_id,
        signer=h.keys["surgeon_bob"],
    )


async def test_an_envelope_committing_to_another_key_is_refused(h):
    """The same department and version number, another key: a member writing under a key
    the others do not hold is told so, whatever the number says."""
    bob, _ = await connect_as(h.surgeon_bob)
    impostor = RoomKey.generate(department=h.plastic.pk, version=1)
    body = _bobs_envelope(h, "bob-commit-001", head=h.head(h.plastic), room_key=impostor)
    assert body["header"]["key_version"] == 1
    error = await expect_refused_unstored(bob, post_frame(body), "invalid_envelope")
    assert "commits to another key" in error["message"]
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-commit-002"))
    await bob.disconnect()


async def test_an_envelope_naming_a_head_outside_its_versions_span_is_refused(h):
    """The head an envelope names is no older than its key version's (version 1 was made at
    statement 3) and no newer than the department's chain."""
    chain = h.chains[h.plastic.pk]
    assert h.head(h.plastic).seq == 3
    bob, _ = await connect_as(h.surgeon_bob)
    beyond = _bobs_envelope(h, "bob-chain-0001", head=ChainHead(4, "ab" * 32))
    error = await expect_refused_unstored(bob, post_frame(beyond), "invalid_envelope")
    assert error["data"] == {"chain_seq": 3}
    before = _bobs_envelope(h, "bob-chain-0002", head=ChainHead(2, chain[1].hash))
    await expect_refused_unstored(bob, post_frame(before), "invalid_envelope")

    # Carol signs Ines's admission: Bob's client, which has not seen it yet, still writes.
    await database_sync_to_async(keep_statement)(
        h, h.plastic, "nurse_ines", "member", signer="head_carol"
    )
    signed = await recv(bob)  # the chain moved: said live, proved by the chain
    assert (signed["type"], signed["seq"]) == ("membership.signed", 4)
    await post(bob, _bobs_envelope(h, "bob-chain-0003", head=ChainHead(3, chain[2].hash)))
    await post(bob, _bobs_envelope(h, "bob-chain-0004", head=h.head(h.plastic)))
    await bob.disconnect()


async def test_a_v1_envelope_is_refused(h):
    """The eight fields of format 1 (no commitment, no chain head, no clock), signed as
    they were: no longer an envelope."""
    bob, _ = await connect_as(h.surgeon_bob)
    body = sealed(h, "surgeon_bob", h.thread, "bob-format-001")
    header = {
        name: value
        for name, value in body["header"].items()
        if name not in ("key_commitment", "chain_seq", "chain_head", "sent_at")
    }
    v1 = {**body, "header": {**header, "v": 1}}
    assert len(v1["header"]) == 8
    await expect_refused_unstored(bob, post_frame(v1), "invalid_envelope")
    await post(bob, body)
    await bob.disconnect()


@pytest.mark.slow
async def test_a_signed_key_replacement_requires_a_new_room_key_version(h):
    """Bob lost his key and Carol signed his new one: whoever holds the old key may hold
    version 1, so nobody writes under it any more."""

    def replace_bobs_key() -> None:
        from accounts.keys import check_publish_identity

        old, new = h.keys["surgeon_bob"], IdentityKeyPair.generate()
        check_publish_identity(h.surgeon_bob, new.public.to_dict(), replace=True)
        h.keys["surgeon_bob"] = new
        keep_statement(
            h,
            h.plastic,
            "surgeon_bob",
            "member",
            signer="head_carol",
            kind="replace",
            replaces=old,
        )

    await database_sync_to_async(replace_bobs_key)()
    bob, _ = await connect_as(h.surgeon_bob)
    carol, _ = await connect_as(h.head_carol)
    for who, communicator in (("surgeon_bob", bob), ("head_carol", carol)):
        body = sealed(h, who, h.thread, f"{who}-rekey-01")
        error = await expect_refused_unstored(
            communicator, post_frame(body), "key_rotation_required"
        )
        assert error["data"] == {"current_version": 1, "rotation_required": True}

    await database_sync_to_async(rotate_room_key)(h, h.plastic, h.head_carol)
    for communicator in (bob, carol):
        frame = await recv(communicator)
        assert frame["type"] == "key.rotated" and frame["key_version"] == 2
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-rekey-0002"))
    pushed = await recv(carol)
    assert pushed["message"]["id"] == ack["message_id"]
    await assert_quiet(bob, carol)
    await bob.disconnect()
    await carol.disconnect()


@pytest.mark.slow
async def test_a_signed_removal_requires_a_new_version_even_after_one_since_the_tables(h):
    """Version 2 was made once Alice left the tables but before her signed removal, at a head
    where the chain still holds her: clients will not write under it, nor will the server."""

    def leave_and_rotate() -> None:
        room_actions.check_remove_member(h.head_carol, h.plastic.pk, h.nurse_alice.pk)
        rotate_room_key(h, h.plastic, h.head_carol)

    await database_sync_to_async(leave_and_rotate)()
    bob, _ = await connect_as(h.surgeon_bob)
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-remove-001"))
    await database_sync_to_async(keep_statement)(
        h, h.plastic, "nurse_alice", "member", signer="head_carol", kind="remove"
    )
    assert (await recv(bob))["type"] == "membership.signed"
    body = sealed(h, "surgeon_bob", h.thread, "bob-remove-002")
    error = await expect_refused_unstored(bob, post_frame(body), "key_rotation_required")
    assert error["data"] == {"current_version": 2, "rotation_required": True}

    await database_sync_to_async(rotate_room_key)(h, h.plastic, h.surgeon_bob)
    frame = await recv(bob)
    assert frame["type"] == "key.rotated" and frame["key_version"] == 3
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-remove-003"))
    await assert_quiet(bob)
    await bob.disconnect()


# --- Retries -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_replayed_envelope_gets_the_first_ack(h):
    bob, _ = await connect_as(h.surgeon_bob)
    carol, _ = await connect_as(h.head_carol)
    body = sealed(h, "surgeon_bob", h.thread, "bob-replay-001")
    first = await post(bob, body)
    assert (await recv(carol))["type"] == "message.new"
    before = await stored_counts()
    again = await ok(bob, post_frame(json.loads(json.dumps(body))))
    assert again == {**first, "duplicate": True}
    # Same id, another message (a new nonce, another text): a conflict, not a duplicate.
    other = sealed(h, "surgeon_bob", h.thread, "bob-replay-001", b"a different note")
    error = await expect_refused_unstored(bob, post_frame(other), "client_msg_id_conflict")
    assert error["data"] == {"message_id": first["message_id"]}
    assert await stored_counts() == before

    # The key rotated since: the retry still gets its ack, under the old version.
    await database_sync_to_async(room_actions.check_remove_member)(
        h.head_carol, h.plastic.pk, h.nurse_alice.pk
    )
    await database_sync_to_async(rotate_room_key)(h, h.plastic, h.head_carol)
    for communicator in (bob, carol):
        assert [(await recv(communicator))["type"] for _ in range(2)] == [
            "member.removed",
            "key.rotated",
        ]
    again = await ok(bob, post_frame(body))
    assert again == {**first, "duplicate": True}
    await assert_quiet(bob, carol)
    await bob.disconnect()
    await carol.disconnect()


# --- Nothing readable is ever stored ---------------------------------------------------------


def _database_dump() -> list[tuple[str, str]]:
    """(table, text) of every row of every table: each value as text, bytes decoded."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                values = []
                for value in row:
                    if isinstance(value, memoryview | bytes | bytearray):
                        value = bytes(value).decode("latin-1")
                    elif isinstance(value, dict | list):
                        value = json.dumps(value, ensure_ascii=False)
                    values.append(str(value))
                rows.append((table, "\x1f".join(values)))
    return rows


async def test_no_plaintext_or_room_key_reaches_any_table(h):
    marker = f"PLAINTEXT-MARKER-{uuid.uuid4().hex}"
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    acks = []
    for n in range(3):
        text = f"{marker} note {n}: wound clean, no erythema".encode()
        acks.append(await post(bob, sealed(h, "surgeon_bob", h.thread, f"bob-mark-{n:05d}", text)))
        assert (await recv(alice))["type"] == "message.new"
    reply = sealed(h, "nurse_alice", h.thread, "alice-mark-0001", f"{marker} seen".encode())
    await post(alice, reply)
    assert (await recv(bob))["type"] == "message.new"
    # Refused posts carry the marker too.
    await expect_refused(bob, post_frame(tampered(reply, "sig:0")), "bad_signature")
    refused_copy = sealed(h, "surgeon_bob", h.thread, "bob-mark-00000", f"{marker} again".encode())
    await expect_refused(bob, post_frame(refused_copy), "client_msg_id_conflict")
    await ok(alice, {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 4})
    assert (await recv(alice))["type"] == "receipt.new"
    await ok(alice, {"type": "history.fetch", "thread": h.thread.pk})
    await bob.disconnect()
    await alice.disconnect()

    secrets = {"marker": marker}
    for department_id, room_key in h.room_keys.items():
        secrets[f"room key of {department_id}"] = b64encode(bytes(room_key))
        secrets[f"room key of {department_id} (hex)"] = bytes(room_key).hex()
    for name, pair in {**h.keys, "compliance": h.compliance_key}.items():
        private = pair.to_bytes()
        for half, raw in (("x25519", private[:32]), ("ed25519 seed", private[32:])):
            secrets[f"{half} private key of {name}"] = b64encode(raw)
            secrets[f"{half} private key of {name} (hex)"] = raw.hex()
    dump = await database_sync_to_async(_database_dump)()
    tables = {table for table, _ in dump}
    assert {"chat_message", "chat_event", "audit_auditevent"} <= tables
    # The messages are there, as ciphertext.
    assert sum(table == "chat_message" for table, _ in dump) == 4
    for table, text in dump:
        for what, secret in secrets.items():
            assert secret not in text, f"{what} found in {table}"
