"""Who may send which WebSocket frame: every action, every role that must be refused.

A refused frame gets an `error` frame with its code, the socket stays open,
no row changes, and a member watching the department hears nothing. The
allowed member is checked on the same frame so the matrix cannot pass by
refusing everything. Unauthenticated sockets never get that far: they are
closed with 4401 before any frame is read.
"""

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import AuthSession
from chat.actions import check_post_message
from chat.models import Event, Message, Receipt, Thread
from core import outbound, protocol
from rooms.models import Membership
from tests.support import Hospital, connect, issue_token, open_socket, sealed
from tests.support.sockets import token_for

pytestmark = pytest.mark.django_db(transaction=True)

ACTIONS = (
    "message.post",
    "history.fetch",
    "receipt.read",
    "receipts.fetch",
    "typing",
    "resume",
    "message.redact",
    "message.correct",
)
NOT_FOUND_MESSAGE = {
    "message.redact": "Message not found.",
    "message.correct": "Message not found.",
}
REFUSED_ROLES = ("compliance_dan", "intern_erin", "nurse_ines", "head_grace")


def frame_for(action: str, h: Hospital, role: str) -> dict[str, Any]:
    """`role`'s frame; a post carries an envelope `role` really signed, for this thread.

    A redaction or a correction names `role`'s own message if they posted one, else
    the seed's; a correction's envelope is `role`'s, bound to that message.
    """
    thread = h.thread.pk
    posted = vars(h).get("_messages", {})
    target = "bob-seed-0001" if role not in posted else f"{role[:8]}-own-0001"
    frames = {
        "message.post": {
            "thread": thread,
            "client_msg_id": "perm-00000001",
            "envelope": sealed(h, role, h.thread, "perm-00000001"),
        },
        "history.fetch": {"thread": thread},
        "receipt.read": {"thread": thread, "up_to_seq": 1},
        "receipts.fetch": {"thread": thread},
        "typing": {"thread": thread, "active": True},
        "resume": {"cursor": {str(h.plastic.pk): 0}},
        "message.redact": {
            "message": posted.get(role, posted.get("surgeon_bob", 999_999)),
            "reason": "Wrong thread",
        },
        "message.correct": {
            "message": posted.get(role, posted.get("surgeon_bob", 999_999)),
            "client_msg_id": "perm-fix-0001",
            "envelope": sealed(h, role, h.thread, "perm-fix-0001", corrects=target),
        },
    }
    return {"type": action, "id": "f-1", **frames[action]}


def seed(h: Hospital) -> None:
    """One message in the thread, read by its sender, so every action has something to touch."""
    body = sealed(h, "surgeon_bob", h.thread, "bob-seed-0001")
    ack = check_post_message(h.surgeon_bob, h.thread.pk, "bob-seed-0001", body)
    vars(h).setdefault("_messages", {})["surgeon_bob"] = ack["message_id"]
    from chat.actions import check_read_receipt

    check_read_receipt(h.surgeon_bob, h.thread.pk, 1)


def own_message(h: Hospital, role: str) -> None:
    """A message of `role`'s, the one their redaction or correction names."""
    cmid = f"{role[:8]}-own-0001"
    ack = check_post_message(h.user(role), h.thread.pk, cmid, sealed(h, role, h.thread, cmid))
    vars(h).setdefault("_messages", {})[role] = ack["message_id"]


def snapshot() -> dict[str, Any]:
    return {
        "threads": list(Thread.objects.order_by("pk").values_list("pk", "last_seq", "closed_at")),
        "messages": list(
            Message.objects.order_by("pk").values_list("pk", "redacted_at", "correction")
        ),
        "receipts": list(Receipt.objects.order_by("pk").values_list("pk", "user_id", "up_to_seq")),
        "events": Event.objects.count(),
        "memberships": Membership.objects.count(),
    }


async def setup(h: Hospital, role: str, action: str) -> tuple[Any, Any, dict[str, Any]]:
    """Seed, then connect a watching member (surgeon_bob or nurse_alice) and the actor."""
    await database_sync_to_async(seed)(h)
    if action in ("message.redact", "message.correct"):
        await database_sync_to_async(own_message)(h, role)
    watcher_name = "surgeon_bob" if role == "nurse_alice" else "nurse_alice"
    watcher, _ = await connect(await token_for(getattr(h, watcher_name)))
    actor, hello = await connect(await token_for(getattr(h, role)))
    return actor, watcher, hello


async def close_all(*communicators) -> None:
    """Disconnect, last opened first.

    The first socket's consumer does channels-redis' shared blocking receive
    for the process; closing it first hands that receive to the next one,
    whose cancellation then costs a second. Nothing here depends on the order.
    """
    for communicator in reversed(communicators):
        await communicator.disconnect()


async def receive(communicator) -> dict[str, Any]:
    frame = await communicator.receive_json_from(timeout=5)
    outbound.validate_outbound(frame)
    return frame


@pytest.mark.slow
@pytest.mark.parametrize("action", ACTIONS)
async def test_refused(live_hospital, action):
    """Each role that must be refused sends the frame, on its own socket, while a member watches."""
    h = live_hospital
    await database_sync_to_async(seed)(h)
    watcher, _ = await connect(await token_for(h.nurse_alice))
    before = await database_sync_to_async(snapshot)()
    for role in REFUSED_ROLES:
        actor, hello = await connect(await token_for(getattr(h, role)))
        assert h.plastic.pk not in [d["id"] for d in hello["departments"]], role

        await actor.send_json_to(frame_for(action, h, role))
        reply = await receive(actor)
        if action == "resume":
            # A cursor for someone else's department is ignored, never replayed.
            assert reply["type"] == "ack", (role, reply)
            assert reply["result"]["ignored"] == [str(h.plastic.pk)], role
            assert str(h.plastic.pk) not in reply["result"]["cursor"], role
        else:
            assert reply["type"] == "error", (role, reply)
            assert reply["id"] == "f-1"
            assert reply["code"] == "not_found", role
            assert reply["message"] == NOT_FOUND_MESSAGE.get(action, "Thread not found.")

        assert await actor.receive_nothing(timeout=0.05), role
        assert await watcher.receive_nothing(timeout=0.05), role
        assert await database_sync_to_async(snapshot)() == before, role
        # The socket stays up: the next frame is answered.
        await actor.send_json_to({"type": "ping", "id": "p-1"})
        assert (await receive(actor))["type"] == "ack", role
        await actor.disconnect()
    await watcher.disconnect()


@pytest.mark.parametrize("action", ACTIONS)
async def test_allowed(live_hospital, action):
    h = live_hospital
    actor, watcher, hello = await setup(h, "nurse_alice", action)
    assert h.plastic.pk in [d["id"] for d in hello["departments"]]
    before = await database_sync_to_async(snapshot)()

    await actor.send_json_to(frame_for(action, h, "nurse_alice"))
    frames = [await receive(actor)]
    while frames[-1]["type"] != "ack":
        assert frames[-1]["type"] != "error", frames[-1]
        frames.append(await receive(actor))
    ack = frames[-1]
    after = await database_sync_to_async(snapshot)()

    if action == "message.redact":
        mine = vars(h)["_messages"]["nurse_alice"]
        assert set(ack["result"]) == {"message_id", "thread", "seq", "redacted_at"}
        assert ack["result"]["message_id"] == mine
        assert [m[0] for m in after["messages"] if m[1] is not None] == [mine]
        pushed = await receive(watcher)
        assert pushed["type"] == "message.redacted"
        assert pushed["message"]["id"] == mine
    elif action == "message.correct":
        mine = vars(h)["_messages"]["nurse_alice"]
        assert ack["result"]["message_id"] == mine and ack["result"]["version"] == 2
        assert [m[0] for m in after["messages"] if m[2] is not None] == [mine]
        pushed = await receive(watcher)
        assert pushed["type"] == "message.corrected"
        assert pushed["message"]["id"] == mine
    elif action == "message.post":
        assert ack["result"]["seq"] == 2
        assert len(after["messages"]) == len(before["messages"]) + 1
        pushed = await receive(watcher)
        assert pushed["type"] == "message.new"
        assert pushed["message"]["sender"]["username"] == "nurse_alice"
    elif action == "history.fetch":
        assert [m["seq"] for m in ack["result"]["messages"]] == [1]
    elif action == "receipt.read":
        assert ack["result"]["advanced"] is True
        assert len(after["receipts"]) == len(before["receipts"]) + 1
        assert (await receive(watcher))["type"] == "receipt.new"
    elif action == "receipts.fetch":
        readers = [r["user"]["username"] for r in ack["result"]["receipts"]]
        assert readers == ["surgeon_bob"]
    elif action == "typing":
        typing = await receive(watcher)
        assert typing["type"] == "typing"
        assert typing["user"]["username"] == "nurse_alice"
    elif action == "resume":
        replayed = frames[:-1]
        assert replayed, "a member's resume from 0 replays the department's history"
        assert [f["event_seq"] for f in replayed] == list(range(1, len(replayed) + 1))
        assert ack["result"]["ignored"] == []
    await close_all(watcher, actor)


@pytest.mark.parametrize("credential", ["none", "bogus", "revoked", "expired", "inactive"])
async def test_unauthenticated_sockets_are_closed_4401(live_hospital, credential):
    h = live_hospital
    token: str | None = await database_sync_to_async(issue_token)(h.nurse_alice)

    def spoil() -> None:
        sessions = AuthSession.objects.filter(user=h.nurse_alice)
        if credential == "revoked":
            sessions.update(revoked_at=timezone.now())
        elif credential == "expired":
            sessions.update(expires_at=timezone.now())
        elif credential == "inactive":
            h.nurse_alice.is_active = False
            h.nurse_alice.save(update_fields=["is_active"])

    await database_sync_to_async(spoil)()
    if credential == "none":
        token = None
    elif credential == "bogus":
        token = "rnd_" + "x" * 43
    communicator = await open_socket(token)
    connected, _ = await communicator.connect()
    assert connected
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}
    # Not a hello, not anything, after the close.
    assert await communicator.receive_nothing(timeout=0.05)
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused_before_authentication(live_hospital):
    token = await database_sync_to_async(issue_token)(live_hospital.nurse_alice)
    communicator = await open_socket(token, origin=b"https://evil.example")
    connected, _ = await communicator.connect()
    assert not connected
    assert await communicator.receive_nothing(timeout=0.05)
    await communicator.disconnect()


async def test_the_frame_ids_are_echoed_and_each_role_gets_the_same_answer(live_hospital):
    """A missing thread and a foreign one answer alike, so nobody can probe for threads."""
    h = live_hospital
    token = await database_sync_to_async(issue_token)(h.nurse_ines)
    ines, _ = await connect(token)
    answers = []
    for thread in (h.thread.pk, 999_999):
        await ines.send_json_to({"type": "history.fetch", "id": "h", "thread": thread})
        answers.append(await receive(ines))
    assert answers[0] == answers[1]
    assert answers[0]["code"] == "not_found"
    await ines.disconnect()


def test_the_matrix_covers_every_inbound_frame():
    """A new frame type fails here until its refused roles and its member are listed."""
    assert set(ACTIONS) | {"ping"} == set(protocol.INBOUND_TYPES)


async def test_a_member_may_not_correct_anothers_message(live_hospital):
    """Only the sender corrects: another member, a head included, sees the message but
    gets `forbidden`, and nothing changes."""
    h = live_hospital
    await database_sync_to_async(seed)(h)
    watcher, _ = await connect(await token_for(h.surgeon_bob))
    before = await database_sync_to_async(snapshot)()
    for role in ("nurse_alice", "head_carol"):
        actor, _ = await connect(await token_for(getattr(h, role)))
        await actor.send_json_to(frame_for("message.correct", h, role))
        reply = await receive(actor)
        assert (reply["type"], reply["id"], reply["code"]) == ("error", "f-1", "forbidden"), role
        assert await watcher.receive_nothing(timeout=0.05)
        assert await database_sync_to_async(snapshot)() == before
        await actor.disconnect()
    await watcher.disconnect()


async def test_a_member_may_not_redact_anothers_message(live_hospital):
    """Redaction is for the sender or a head: another member sees the message but gets
    `forbidden`, and nothing changes."""
    h = live_hospital
    await database_sync_to_async(seed)(h)
    watcher, _ = await connect(await token_for(h.surgeon_bob))
    alice, _ = await connect(await token_for(h.nurse_alice))
    before = await database_sync_to_async(snapshot)()
    await alice.send_json_to(frame_for("message.redact", h, "nurse_alice"))
    reply = await receive(alice)
    assert (reply["type"], reply["id"], reply["code"]) == ("error", "f-1", "forbidden")
    assert await watcher.receive_nothing(timeout=0.05)
    assert await database_sync_to_async(snapshot)() == before
    await close_all(watcher, alice)
