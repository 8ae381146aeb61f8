"""Real-time flows through the full ASGI stack: fan-out, history, receipts, typing,
membership and thread events, and sign-out closing a login's sockets."""

from datetime import datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.actions import _revoke
from accounts.models import AuthSession, hash_token
from chat import actions as chat_actions
from chat.models import Receipt
from core import outbound, protocol
from core.crypto import decrypt_message
from rooms import actions as room_actions
from tests.support import open_socket, rotate_room_key, sealed
from tests.support.sockets import (
    assert_alive,
    assert_closed,
    assert_quiet,
    connect_as,
    connect_with,
    expect_refused,
    finish,
    ok,
    post,
    post_frame,
    recv,
    stored_counts,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


def user_ref(user) -> dict:
    return {"id": user.pk, "username": user.username}


@pytest.mark.slow
async def test_a_message_reaches_every_connected_member_and_no_one_else(live_hospital):
    h = live_hospital
    bob, hello = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    carol, _ = await connect_as(h.head_carol)
    ines, _ = await connect_as(h.nurse_ines)
    grace, _ = await connect_as(h.head_grace)
    erin, _ = await connect_as(h.intern_erin)
    plastic = h.plastic.pk
    plaintext = b"Flap perfused, capillary refill 2 s. Pain 3/10."
    body = sealed(h, "surgeon_bob", h.thread, "bob-fanout-01", plaintext)

    ack = await post(bob, body)
    assert ack["thread"] == h.thread.pk and ack["seq"] == 1
    sent_at = datetime.fromisoformat(ack["created_at"])
    assert sent_at.tzinfo is not None
    assert abs(timezone.now() - sent_at) < timedelta(minutes=1)

    for member in (alice, carol):
        frame = await recv(member)
        assert frame["type"] == "message.new"
        assert frame["department"] == plastic
        assert frame["event_seq"] == hello["cursor"][str(plastic)] + 1
        message = frame["message"]
        assert message["id"] == ack["message_id"]
        assert message["seq"] == 1 and message["thread"] == h.thread.pk
        assert message["sender"] == user_ref(h.surgeon_bob)
        assert message["client_msg_id"] == "bob-fanout-01"
        assert message["envelope"] == body
        assert message["created_at"] == ack["created_at"]
        # What a member's client does with it: check Bob's signature, open it with the room key.
        opened = decrypt_message(
            message["envelope"],
            room_key=h.room_keys[plastic],
            sender_key=h.keys["surgeon_bob"].public,
        )
        assert opened == plaintext
    await assert_quiet(ines, grace, erin, bob)

    # Message numbers are per thread; event numbers are per department.
    second = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-fanout-02"))
    assert second["seq"] == 2
    for member in (alice, carol):
        assert (await recv(member))["message"]["seq"] == 2
    vascular = await post(ines, sealed(h, "nurse_ines", h.vascular_thread, "ines-fanout-1"))
    assert vascular["seq"] == 1
    assert (await recv(grace))["message"]["id"] == vascular["message_id"]
    await assert_quiet(bob, alice, carol, erin)

    for communicator in (bob, alice, carol, ines, grace, erin):
        await communicator.disconnect()


@pytest.mark.slow
async def test_history_pages_backwards(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    bodies = [
        sealed(h, "surgeon_bob", h.thread, f"bob-history-{i}", b"note %d" % i) for i in range(5)
    ]
    for body in bodies:
        await post(bob, body)
    assert [f["message"]["seq"] for f in [await recv(alice) for _ in bodies]] == [1, 2, 3, 4, 5]

    fetch = {"type": "history.fetch", "thread": h.thread.pk, "limit": 2}
    page = await ok(alice, fetch)
    assert page["thread"] == h.thread.pk and page["has_more"] is True
    assert [m["seq"] for m in page["messages"]] == [4, 5]
    for message in page["messages"]:
        outbound.MessageOut.model_validate(message)
        assert message["envelope"] == bodies[message["seq"] - 1]
        assert message["sender"] == user_ref(h.surgeon_bob)

    page = await ok(alice, {**fetch, "before_seq": 4})
    assert [m["seq"] for m in page["messages"]] == [2, 3] and page["has_more"] is True
    page = await ok(alice, {**fetch, "before_seq": 2})
    assert [m["seq"] for m in page["messages"]] == [1] and page["has_more"] is False
    page = await ok(alice, {**fetch, "before_seq": 1})
    assert page["messages"] == [] and page["has_more"] is False
    page = await ok(alice, {"type": "history.fetch", "thread": h.thread.pk})
    assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5] and page["has_more"] is False

    await assert_quiet(alice, bob)
    await bob.disconnect()
    await alice.disconnect()


@pytest.mark.slow
async def test_read_receipts_persist_broadcast_and_never_go_backwards(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    carol, _ = await connect_as(h.head_carol)
    ines, _ = await connect_as(h.nurse_ines)
    for i in range(3):
        await post(bob, sealed(h, "surgeon_bob", h.thread, f"bob-receipt-{i}"))
    for member in (alice, carol):
        assert [(await recv(member))["type"] for _ in range(3)] == ["message.new"] * 3
    before = await stored_counts()

    read = await ok(alice, {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 2})
    assert read["advanced"] is True and read["up_to_seq"] == 2
    assert read["user"] == user_ref(h.nurse_alice) and read["thread"] == h.thread.pk
    for member in (bob, alice, carol):
        frame = await recv(member)
        assert frame["type"] == "receipt.new"
        assert frame["thread"] == h.thread.pk and frame["up_to_seq"] == 2
        assert frame["user"] == user_ref(h.nurse_alice)
        assert frame["read_at"] == read["read_at"]
    after = await stored_counts()
    assert after == {**before, "receipts": before["receipts"] + 1, "events": before["events"] + 1}
    stored = await Receipt.objects.aget(thread=h.thread, user=h.nurse_alice)
    assert stored.up_to_seq == 2 and stored.read_at.isoformat() == read["read_at"]

    carol_read = await ok(carol, {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 3})
    for member in (bob, alice, carol):
        assert (await recv(member))["user"] == user_ref(h.head_carol)

    everyone = await ok(bob, {"type": "receipts.fetch", "thread": h.thread.pk})
    latest = {r["user"]["username"]: (r["up_to_seq"], r["read_at"]) for r in everyone["receipts"]}
    assert latest == {
        "nurse_alice": (2, read["read_at"]),
        "head_carol": (3, carol_read["read_at"]),
    }
    who = await ok(bob, {"type": "receipts.fetch", "thread": h.thread.pk, "seq": 2})
    assert who["seq"] == 2
    assert [(r["user"]["username"], r["read_at"]) for r in who["readers"]] == [
        ("nurse_alice", read["read_at"]),
        ("head_carol", carol_read["read_at"]),
    ]
    who = await ok(bob, {"type": "receipts.fetch", "thread": h.thread.pk, "seq": 3})
    assert [r["user"]["username"] for r in who["readers"]] == ["head_carol"]

    # Backwards is a no-op: the current receipt comes back, nothing is stored or sent.
    before = await stored_counts()
    again = await ok(alice, {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 1})
    assert again == {**read, "advanced": False}
    same = await ok(alice, {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 2})
    assert same["advanced"] is False
    assert await stored_counts() == before
    await assert_quiet(bob, alice, carol, ines)
    await expect_refused(ines, {"type": "receipts.fetch", "thread": h.thread.pk}, "not_found")

    for communicator in (bob, alice, carol, ines):
        await communicator.disconnect()


@pytest.mark.slow
async def test_typing_is_relayed_to_others_and_never_stored(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    carol, _ = await connect_as(h.head_carol)
    ines, _ = await connect_as(h.nurse_ines)
    before = await stored_counts()

    for active in (True, False):
        assert await ok(alice, {"type": "typing", "thread": h.thread.pk, "active": active}) == {}
        for member in (bob, carol):
            frame = await recv(member)
            assert frame == {
                "type": "typing",
                "department": h.plastic.pk,
                "thread": h.thread.pk,
                "user": user_ref(h.nurse_alice),
                "active": active,
            }
        await assert_quiet(alice, ines)
    assert await stored_counts() == before

    for communicator in (bob, alice, carol, ines):
        await communicator.disconnect()


@pytest.mark.slow
async def test_admitted_member_joins_the_live_stream(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    carol, _ = await connect_as(h.head_carol)
    ines, hello = await connect_as(h.nurse_ines)
    assert [d["id"] for d in hello["departments"]] == [h.vascular.pk]

    # Before admission, Ines hears nothing of Plastic surgery.
    await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-admit-001"))
    assert (await recv(carol))["type"] == "message.new"
    await assert_quiet(ines)

    await database_sync_to_async(room_actions.check_admit_member)(
        h.head_carol, h.plastic.pk, h.nurse_ines.pk
    )
    for communicator in (bob, carol, ines):
        frame = await recv(communicator)
        assert frame["type"] == "member.admitted"
        assert frame["department"] == h.plastic.pk
        assert frame["user"] == user_ref(h.nurse_ines)
        assert frame["by"] == user_ref(h.head_carol)
        assert frame["role"] == "member"
    await assert_quiet(bob, carol, ines)

    # Her already-open socket now gets the department's messages, and she may post.
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-admit-002"))
    for communicator in (carol, ines):
        assert (await recv(communicator))["message"]["id"] == ack["message_id"]
    own = await post(ines, sealed(h, "nurse_ines", h.thread, "ines-admit-01"))
    for communicator in (bob, carol):
        assert (await recv(communicator))["message"]["id"] == own["message_id"]
    await ok(ines, {"type": "typing", "thread": h.thread.pk})
    for communicator in (bob, carol):
        assert (await recv(communicator))["type"] == "typing"
    await assert_quiet(bob, carol, ines)

    for communicator in (bob, carol, ines):
        await communicator.disconnect()


@pytest.mark.slow
async def test_removed_member_socket_leaves_the_department(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    carol, _ = await connect_as(h.head_carol)
    alice, _ = await connect_as(h.nurse_alice)

    await database_sync_to_async(room_actions.check_remove_member)(
        h.head_carol, h.plastic.pk, h.nurse_alice.pk
    )
    for communicator in (bob, carol, alice):
        frame = await recv(communicator)
        assert frame["type"] == "member.removed"
        assert frame["department"] == h.plastic.pk
        assert frame["user"] == user_ref(h.nurse_alice)
        assert frame["by"] == user_ref(h.head_carol)
    await assert_quiet(bob, carol, alice)

    # She held the room key: the next message needs a new version, without her.
    await database_sync_to_async(rotate_room_key)(h, h.plastic, h.surgeon_bob)
    for communicator in (bob, carol):
        frame = await recv(communicator)
        assert frame["type"] == "key.rotated" and frame["key_version"] == 2
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-remove-01"))
    assert (await recv(carol))["message"]["id"] == ack["message_id"]
    await ok(bob, {"type": "typing", "thread": h.thread.pk})
    assert (await recv(carol))["type"] == "typing"
    await assert_quiet(alice)

    before = await stored_counts()
    await expect_refused(
        alice, post_frame(sealed(h, "nurse_alice", h.thread, "alice-gone-01")), "not_found"
    )
    await expect_refused(alice, {"type": "typing", "thread": h.thread.pk}, "not_found")
    await expect_refused(alice, {"type": "history.fetch", "thread": h.thread.pk}, "not_found")
    assert await stored_counts() == before
    await assert_alive(alice)
    await assert_quiet(bob, carol)

    # Nor can she replay the department's stream.
    key = str(h.plastic.pk)
    resumed = await ok(alice, {"type": "resume", "cursor": {key: 0}})
    assert resumed == {"cursor": {}, "ignored": [key]}
    await assert_quiet(alice)

    # Admitted again, the same socket rejoins from the admission on.
    await database_sync_to_async(room_actions.check_admit_member)(
        h.head_carol, h.plastic.pk, h.nurse_alice.pk
    )
    for communicator in (bob, carol, alice):
        assert (await recv(communicator))["type"] == "member.admitted"
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-remove-02"))
    for communicator in (carol, alice):
        assert (await recv(communicator))["message"]["id"] == ack["message_id"]
    await assert_quiet(bob, carol, alice)

    for communicator in (bob, carol, alice):
        await communicator.disconnect()


@pytest.mark.slow
async def test_thread_lifecycle_events(live_hospital):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ines, _ = await connect_as(h.nurse_ines)

    created = await database_sync_to_async(chat_actions.check_create_thread)(
        h.surgeon_bob, h.plastic.pk, h.patient.pk, "Pre-op site marking"
    )
    for communicator in (bob, alice):
        frame = await recv(communicator)
        assert frame["type"] == "thread.created"
        assert frame["thread"] == created
        assert frame["thread"]["closed_at"] is None
    await assert_quiet(ines)

    await database_sync_to_async(chat_actions.check_set_thread_closed)(
        h.head_carol, created["id"], True
    )
    for communicator in (bob, alice):
        frame = await recv(communicator)
        assert frame["type"] == "thread.closed"
        assert frame["thread"]["id"] == created["id"]
        assert frame["thread"]["closed_at"] is not None
        assert frame["by"] == user_ref(h.head_carol)
    await expect_refused(
        bob, post_frame(sealed(h, "surgeon_bob", created, "bob-closed-02")), "thread_closed"
    )

    await database_sync_to_async(chat_actions.check_set_thread_closed)(
        h.head_carol, created["id"], False
    )
    for communicator in (bob, alice):
        frame = await recv(communicator)
        assert frame["type"] == "thread.reopened"
        assert frame["thread"]["closed_at"] is None
    ack = await post(bob, sealed(h, "surgeon_bob", created, "bob-reopen-01"))
    assert ack["seq"] == 1
    assert (await recv(alice))["message"]["thread"] == created["id"]
    await assert_quiet(bob, alice, ines)

    for communicator in (bob, alice, ines):
        await communicator.disconnect()


async def test_sign_out_closes_that_logins_sockets_only(live_hospital):
    h = live_hospital
    signed_out_token = await token_for(h.nurse_alice)
    first, _ = await connect_with(signed_out_token)
    same_login, _ = await connect_with(signed_out_token)
    other_login, _ = await connect_as(h.nurse_alice)
    auth_session = await AuthSession.objects.aget(token_hash=hash_token(signed_out_token))

    await database_sync_to_async(_revoke)(h.nurse_alice, auth_session.pk, None)
    await assert_closed(first, protocol.CLOSE_UNAUTHENTICATED)
    await assert_closed(same_login, protocol.CLOSE_UNAUTHENTICATED)
    await assert_alive(other_login)

    # The revoked token no longer opens a socket.
    again = await open_socket(signed_out_token)
    connected, _ = await again.connect()
    assert connected
    await assert_closed(again, protocol.CLOSE_UNAUTHENTICATED)

    for communicator in (first, same_login, again):
        await finish(communicator)
    await other_login.disconnect()
