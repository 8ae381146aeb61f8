"""Group commit: posts that arrive together are stored in one transaction, each with its own
ack or refusal, exactly as if posted alone."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from chat.actions import Post, check_post_message, check_post_messages
from chat.models import Event, Message, Thread
from core.errors import RoundsError
from rooms.models import Department
from tests.support import Hospital, sealed
from tests.support.sockets import connect_as, finish, ok, recv

pytestmark = pytest.mark.django_db


def post(h: Hospital, who: str, thread=None, cmid: str | None = None, envelope=None) -> Post:
    thread = thread or h.thread
    cmid = cmid or uuid.uuid4().hex
    body = envelope or sealed(h, who, thread, cmid)
    return Post(h.user(who), getattr(thread, "pk", thread), cmid, body)


def codes(outcomes: list) -> list[str]:
    return [o.code if isinstance(o, RoundsError) else "ok" for o in outcomes]


def test_a_batch_numbers_its_posts_densely_in_order(hospital: Hospital):
    h = hospital
    posts = [post(h, name) for name in ("surgeon_bob", "nurse_alice", "head_carol") * 3]
    before = Event.objects.filter(department=h.plastic).count()
    outcomes = check_post_messages(posts)
    assert codes(outcomes) == ["ok"] * 9
    assert [o["seq"] for o in outcomes] == list(range(1, 10))
    stored = list(Message.objects.filter(thread=h.thread).order_by("seq"))
    assert [m.client_msg_id for m in stored] == [p.client_msg_id for p in posts]
    assert [m.pk for m in stored] == [o["message_id"] for o in outcomes]
    events = list(Event.objects.filter(department=h.plastic).order_by("seq"))
    assert len(events) == before + 9
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.message_id for e in events[-9:]] == [m.pk for m in stored]
    assert Thread.objects.get(pk=h.thread.pk).last_seq == 9
    entries = AuditEvent.objects.filter(action="message.posted").order_by("id")
    assert [e.object_id for e in entries] == [str(m.pk) for m in stored]
    assert [e.actor_id for e in entries] == [p.actor.pk for p in posts]


def test_refusals_in_a_batch_are_those_of_posts_alone(hospital: Hospital):
    h = hospital
    first = post(h, "surgeon_bob")
    again = Post(first.actor, first.thread_id, first.client_msg_id, first.envelope)
    reused = post(h, "surgeon_bob", cmid=first.client_msg_id)  # same id, other content
    foreign = post(h, "surgeon_bob", thread=h.vascular_thread)  # not his department
    forged = post(h, "nurse_alice")
    forged = Post(h.surgeon_bob, forged.thread_id, forged.client_msg_id, forged.envelope)
    later = post(h, "nurse_alice")
    outcomes = check_post_messages([first, again, reused, foreign, forged, later])
    assert codes(outcomes) == [
        "ok",
        "ok",
        "client_msg_id_conflict",
        "not_found",
        "bad_signature",
        "ok",
    ]
    assert outcomes[1] == {**outcomes[0], "duplicate": True}
    assert (outcomes[0]["seq"], outcomes[5]["seq"]) == (1, 2)  # refusals take no number
    # Each refusal is the one a post alone gets.
    for alone in (reused, foreign, forged):
        with pytest.raises(RoundsError) as refused:
            check_post_message(alone.actor, alone.thread_id, alone.client_msg_id, alone.envelope)
        assert refused.value.code in codes(outcomes)
    assert Message.objects.count() == 2
    assert AuditEvent.objects.filter(action="message.posted").count() == 2


def test_a_closed_thread_and_a_due_rotation_refuse_only_their_posts(hospital: Hospital):
    from chat.actions import do_set_thread_closed
    from rooms.actions import do_remove_member

    h = hospital
    do_set_thread_closed(h.head_carol, h.vascular_thread, True)
    to_closed = post(h, "nurse_ines", thread=h.vascular_thread)
    fine = post(h, "surgeon_bob")
    outcomes = check_post_messages([to_closed, fine])
    assert codes(outcomes) == ["thread_closed", "ok"]
    do_remove_member(h.head_carol, h.plastic.pk, h.nurse_alice.pk)
    counters = (
        Thread.objects.get(pk=h.thread.pk).last_seq,
        Department.objects.get(pk=h.plastic.pk).event_seq,
    )
    outcomes = check_post_messages([post(h, "surgeon_bob"), post(h, "head_carol")])
    assert codes(outcomes) == ["key_rotation_required"] * 2
    # The numbers taken for them were given back: no gap before the next post.
    assert (
        Thread.objects.get(pk=h.thread.pk).last_seq,
        Department.objects.get(pk=h.plastic.pk).event_seq,
    ) == counters


def test_the_statements_do_not_grow_with_the_batch(hospital: Hospital):
    h = hospital
    counts = []
    # The first batch also reads the senders' keys, which the process keeps after.
    for size in (2, 3, 30):
        posts = [post(h, ("surgeon_bob", "nurse_alice")[i % 2]) for i in range(size)]
        with CaptureQueriesContext(connection) as queries:
            assert codes(check_post_messages(posts)) == ["ok"] * size
        counts.append(len(queries))
    assert counts[1] == counts[2], counts


def test_a_retry_of_an_earlier_post_falls_back_to_one_post_at_a_time(hospital: Hospital):
    """The batch's insert meets the unique (sender, client_msg_id): each post alone then."""
    h = hospital
    stored = post(h, "surgeon_bob")
    check_post_message(stored.actor, stored.thread_id, stored.client_msg_id, stored.envelope)
    fresh = post(h, "nurse_alice")
    outcomes = check_post_messages([fresh, stored])
    assert codes(outcomes) == ["ok", "ok"]
    assert outcomes[1]["duplicate"] is True
    assert outcomes[0]["seq"] == 2
    assert Message.objects.count() == 2
    reused = post(h, "surgeon_bob", cmid=stored.client_msg_id)  # same id, other content
    assert codes(check_post_messages([reused, post(h, "head_carol")])) == [
        "client_msg_id_conflict",
        "ok",
    ]


async def test_concurrent_posts_over_sockets_are_acked_and_delivered_once_in_order(
    live_hospital: Hospital,
):
    h = live_hospital
    names = ("surgeon_bob", "nurse_alice", "head_carol")
    sockets = {name: (await connect_as(h.user(name)))[0] for name in names}
    frames = {
        name: [
            {
                "id": f"{name}-{n}",
                "type": "message.post",
                "thread": h.thread.pk,
                "client_msg_id": (cmid := uuid.uuid4().hex),
                "envelope": await database_sync_to_async(sealed)(h, name, h.thread, cmid),
            }
            for n in range(10)
        ]
        for name in names
    }
    # Every socket sends all its posts at once: they queue for the database together.
    for name, socket in sockets.items():
        for frame in frames[name]:
            await socket.send_json_to(frame)
    received = {name: [] for name in names}
    acks = {}
    for name, socket in sockets.items():
        while (
            len([f for f in received[name] if f["type"] == "message.new"]) < 30
            or len([f for f in received[name] if f["type"] == "ack"]) < 10
        ):
            received[name].append(await recv(socket))
        acks[name] = [f["result"]["seq"] for f in received[name] if f["type"] == "ack"]
    all_seqs = sorted(seq for seqs in acks.values() for seq in seqs)
    assert all_seqs == list(range(1, 31))
    for name in names:
        events = [f["event_seq"] for f in received[name] if f["type"] == "message.new"]
        assert events == sorted(set(events)) and len(events) == 30, name
    for socket in sockets.values():
        assert await ok(socket, {"type": "ping"})
        await finish(socket)
    await asyncio.sleep(0)
