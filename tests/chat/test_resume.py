"""Exactly-once delivery: `resume` after a reconnect, and the consumer's gap filling.

Each department's events are numbered densely. A client that reconnects and
resumes from its last cursor must get every event it missed once, in order,
and then the live stream with no repeat.
"""

import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from audit.models import AuditEvent
from chat import actions as chat_actions
from chat import events as chat_events
from rooms import actions as room_actions
from tests.support import sealed
from tests.support.sockets import (
    assert_quiet,
    connect_as,
    ok,
    post,
    recv,
    resume,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
async def test_resume_replays_each_missed_event_once_in_order(live_hospital, settings):
    settings.ROUNDS_RESUME_BATCH = 3  # the replay spans several batches
    h = live_hospital
    key = str(h.plastic.pk)
    alice, hello = await connect_as(h.nurse_alice)
    saved = hello["cursor"]
    await alice.disconnect()

    bob, _ = await connect_as(h.surgeon_bob)
    acks = [
        await post(bob, sealed(h, "surgeon_bob", h.thread, f"bob-missed-{i}")) for i in range(7)
    ]
    receipt = await ok(bob, {"type": "receipt.read", "thread": h.thread.pk, "up_to_seq": 7})
    assert (await recv(bob))["type"] == "receipt.new"
    # Vascular surgery is busy too, but Alice is not in it.
    await database_sync_to_async(chat_actions.check_post_message)(
        h.nurse_ines,
        h.vascular_thread.pk,
        "ines-elsewhere",
        sealed(h, "nurse_ines", h.vascular_thread, "ines-elsewhere"),
    )

    alice, hello = await connect_as(h.nurse_alice)
    assert hello["cursor"] == {key: saved[key] + 8}
    replayed, result = await resume(alice, saved)

    assert [f["event_seq"] for f in replayed] == list(range(saved[key] + 1, saved[key] + 9))
    assert {f["department"] for f in replayed} == {h.plastic.pk}
    assert [f["type"] for f in replayed] == ["message.new"] * 7 + ["receipt.new"]
    assert [f["message"]["id"] for f in replayed[:7]] == [a["message_id"] for a in acks]
    assert [f["message"]["seq"] for f in replayed[:7]] == list(range(1, 8))
    assert replayed[7]["up_to_seq"] == 7 and replayed[7]["read_at"] == receipt["read_at"]
    assert result == {"cursor": hello["cursor"], "ignored": []}
    assert await AuditEvent.objects.filter(
        action="events.resumed", actor_id=h.nurse_alice.pk
    ).aexists()

    # Live again, and nothing twice.
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-after-resume"))
    live = await recv(alice)
    assert live["message"]["id"] == ack["message_id"]
    assert live["event_seq"] == saved[key] + 9
    await assert_quiet(alice, bob)

    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.slow
async def test_events_between_hello_and_resume_are_not_sent_twice(live_hospital):
    """A live event can reach the new socket before the client's resume does."""
    h = live_hospital
    key = str(h.plastic.pk)
    alice, hello = await connect_as(h.nurse_alice)
    saved = hello["cursor"]
    await alice.disconnect()

    bob, _ = await connect_as(h.surgeon_bob)
    missed = [await post(bob, sealed(h, "surgeon_bob", h.thread, f"bob-gap-{i}")) for i in range(2)]
    alice, hello = await connect_as(h.nurse_alice)
    early = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-early-live"))
    live = await recv(alice)
    assert live["message"]["id"] == early["message_id"]
    assert live["event_seq"] == saved[key] + 3

    replayed, result = await resume(alice, saved)
    assert [f["message"]["id"] for f in replayed] == [m["message_id"] for m in missed]
    assert [f["event_seq"] for f in replayed] == [saved[key] + 1, saved[key] + 2]
    assert result["cursor"] == {key: saved[key] + 3}

    # Asking again is harmless: everything was already sent on this socket.
    replayed, result = await resume(alice, saved)
    assert replayed == []
    assert result["cursor"] == {key: saved[key] + 3}
    await assert_quiet(alice, bob)

    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.slow
async def test_resume_at_the_head_and_foreign_departments(live_hospital):
    h = live_hospital
    alice, hello = await connect_as(h.nurse_alice)
    replayed, result = await resume(alice, hello["cursor"])
    assert replayed == []
    assert result == {"cursor": hello["cursor"], "ignored": []}

    # A department she is not in (or that does not exist) is ignored, not refused.
    foreign = {str(h.vascular.pk): 0, "999999": 0}
    replayed, result = await resume(alice, {**hello["cursor"], **foreign})
    assert replayed == []
    assert result == {"cursor": hello["cursor"], "ignored": sorted(foreign)}

    replayed, result = await resume(alice, {})
    assert replayed == [] and result["cursor"] == hello["cursor"]
    await assert_quiet(alice)
    await alice.disconnect()


@pytest.mark.slow
async def test_resume_from_zero_replays_the_departments_whole_stream(live_hospital):
    h = live_hospital
    key = str(h.plastic.pk)
    alice, hello = await connect_as(h.nurse_alice)
    replayed, result = await resume(alice, {key: 0})
    assert [f["event_seq"] for f in replayed] == list(range(1, hello["cursor"][key] + 1))
    assert replayed[0]["type"] == "member.admitted"  # the first head
    assert "thread.created" in {f["type"] for f in replayed}
    assert result["cursor"] == hello["cursor"]
    await assert_quiet(alice)
    await alice.disconnect()


class CapturingLayer:
    """Stands in for the channel layer while events are stored but not yet published."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, message))


@pytest.mark.slow
async def test_an_event_published_early_is_preceded_by_the_missing_ones(live_hospital, monkeypatch):
    """Two committing workers may publish out of order; each socket fills the gap itself."""
    h = live_hospital
    group = f"dept.{h.plastic.pk}"
    alice, hello = await connect_as(h.nurse_alice)
    bob, _ = await connect_as(h.surgeon_bob)
    head = hello["cursor"][str(h.plastic.pk)]

    capture = CapturingLayer()
    with monkeypatch.context() as patched:
        patched.setattr(chat_events, "get_channel_layer", lambda: capture)
        for i in range(4):
            await database_sync_to_async(chat_actions.check_post_message)(
                h.head_carol,
                h.thread.pk,
                f"carol-held-{i}",
                sealed(h, "head_carol", h.thread, f"carol-held-{i}"),
            )
    held = [message for name, message in capture.sent if name == group]
    assert [m["seq"] for m in held] == [head + 1, head + 2, head + 3, head + 4]
    await assert_quiet(alice, bob)

    layer = get_channel_layer()
    await layer.group_send(group, held[3])
    for communicator in (alice, bob):
        frames = [await recv(communicator) for _ in range(4)]
        assert [f["event_seq"] for f in frames] == [head + 1, head + 2, head + 3, head + 4]
        # A replayed event is the very frame the live path would have sent.
        assert frames == [json.loads(m["frame"]) for m in held]

    # Late or repeated publications of events already delivered are dropped.
    await layer.group_send(group, held[1])
    await layer.group_send(group, held[3])
    await assert_quiet(alice, bob)

    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-after-gap"))
    live = await recv(alice)
    assert live["message"]["id"] == ack["message_id"] and live["event_seq"] == head + 5
    await assert_quiet(alice, bob)

    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.slow
async def test_events_published_before_an_admitted_socket_joins_still_reach_it(
    live_hospital, monkeypatch
):
    """The admission reaches the new member's socket late: what was posted meanwhile is not lost."""
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    ines, _ = await connect_as(h.nurse_ines)

    capture = CapturingLayer()
    with monkeypatch.context() as patched:
        patched.setattr(chat_events, "get_channel_layer", lambda: capture)
        await database_sync_to_async(room_actions.check_admit_member)(
            h.head_carol, h.plastic.pk, h.nurse_ines.pk
        )
    (user_group, to_ines), (dept_group, to_department) = capture.sent
    assert user_group == f"user.{h.nurse_ines.pk}" and dept_group == f"dept.{h.plastic.pk}"
    layer = get_channel_layer()
    await layer.group_send(dept_group, to_department)
    assert (await recv(bob))["type"] == "member.admitted"

    # Bob posts before Ines's socket has heard of her admission.
    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-before-join"))
    await assert_quiet(ines)

    await layer.group_send(user_group, to_ines)
    admitted = await recv(ines)
    assert admitted["type"] == "member.admitted" and admitted["event_seq"] == to_ines["seq"]
    caught_up = await recv(ines)
    assert caught_up["type"] == "message.new"
    assert caught_up["message"]["id"] == ack["message_id"]
    assert caught_up["event_seq"] == to_ines["seq"] + 1

    ack = await post(bob, sealed(h, "surgeon_bob", h.thread, "bob-after-join"))
    assert (await recv(ines))["message"]["id"] == ack["message_id"]
    await assert_quiet(bob, ines)

    await bob.disconnect()
    await ines.disconnect()
