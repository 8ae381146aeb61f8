"""Delivery that does not depend on the channel layer, and drains (chat/lifecycle.py).

A publication lost after commit (Redis restarting, a process killed in
between) used to leave the event undelivered until the department's next
one. Each process's sweep now delivers it from the database, without any
later traffic; it also closes the sockets of a login whose sign-out was not
heard. A drain (SIGTERM) answers the posts in flight and closes every
socket with 4503, and `/healthz` says so.
"""

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.test import AsyncClient

from accounts.actions import _revoke
from accounts.models import AuthSession, hash_token
from chat.consumers import batching
from chat.lifecycle import this_process
from core import protocol
from rounds import health
from tests.support import sealed
from tests.support.sockets import (
    assert_alive,
    assert_closed,
    assert_quiet,
    connect_as,
    connect_with,
    finish,
    ok,
    post,
    post_frame,
    recv,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lost_publications(monkeypatch):
    """The channel layer refuses every publication after commit, as Redis down would."""

    async def refuse(publications):
        raise ConnectionError("injected: Redis is restarting")

    monkeypatch.setattr(batching, "publish_all", refuse)


@pytest.mark.slow
async def test_a_post_whose_publication_is_lost_is_acknowledged_and_delivered_anyway(
    live_hospital, lost_publications
):
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    body = sealed(h, "surgeon_bob", h.thread, "bob-lostpub-1")
    ack = await post(bob, body)  # acknowledged: it is stored
    assert ack["seq"] == 1
    # No later event: the sweep alone delivers it, within two sweeps and a little.
    frame = await recv(alice, timeout=3)
    assert frame["type"] == "message.new"
    assert frame["message"]["id"] == ack["message_id"]
    assert frame["message"]["envelope"] == body
    # Once, and only once: the next sweeps find Alice up to date.
    await asyncio.sleep(1.2)
    await assert_quiet(alice)
    assert this_process().caught_up >= 1
    await finish(bob)
    await finish(alice)


@pytest.mark.slow
async def test_a_sign_out_not_heard_still_closes_the_login_sockets(live_hospital, monkeypatch):
    h = live_hospital
    monkeypatch.setattr("chat.events._send", lambda group, message: None)  # lost
    token = await token_for(h.nurse_alice)
    alice, _ = await connect_with(token)
    session = await database_sync_to_async(AuthSession.objects.get)(token_hash=hash_token(token))
    await database_sync_to_async(_revoke)(h.nurse_alice, session.pk, None)
    closed = await alice.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": protocol.CLOSE_UNAUTHENTICATED}


@pytest.mark.slow
async def test_a_drain_answers_posts_in_flight_then_closes_with_4503(live_hospital, monkeypatch):
    h = live_hospital
    store = batching.check_post_messages

    def slow_store(posts):  # the database is slow: the posts are in flight when the drain starts
        time.sleep(0.3)
        return store(posts)

    monkeypatch.setattr(batching, "check_post_messages", slow_store)
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    frames = [
        {"id": f"drain-{n}", **post_frame(sealed(h, "surgeon_bob", h.thread, f"bob-drain-{n:04d}"))}
        for n in range(5)
    ]
    for frame in frames:
        await bob.send_json_to(frame)
    process = this_process()
    for _ in range(200):  # until the socket has read them all
        if sum(len(c.post_tasks) for c in process.consumers) == len(frames):
            break
        await asyncio.sleep(0.01)
    await process.drain(within=10)
    answered = []
    while True:
        output = await bob.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output["code"] == protocol.CLOSE_RESTARTING
            break
        message = json.loads(output["text"])
        if message["type"] in ("ack", "error"):
            answered.append(message)
    # Every post taken was answered before the socket closed: acked, none lost.
    assert sorted(a["id"] for a in answered) == sorted(f["id"] for f in frames)
    assert all(a["type"] == "ack" for a in answered)
    closing = await alice.receive_output(timeout=5)
    while closing["type"] != "websocket.close":
        closing = await alice.receive_output(timeout=5)
    assert closing["code"] == protocol.CLOSE_RESTARTING
    # While it drains, the process takes no new socket and /healthz says 503.
    late, _ = await connect_as_closed(h.head_carol)
    assert late == protocol.CLOSE_RESTARTING
    answer = await AsyncClient().get("/healthz")
    assert answer.status_code == 503
    assert json.loads(answer.content)["status"] == "draining"
    this_process().draining = False


async def connect_as_closed(user) -> tuple[int, None]:
    """Open a socket that the server closes at once; its close code."""
    from tests.support import open_socket

    communicator = await open_socket(await token_for(user))
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed: a client is told why
    output = await communicator.receive_output(timeout=5)
    while output["type"] != "websocket.close":
        output = await communicator.receive_output(timeout=5)
    return output["code"], None


async def test_healthz_keeps_one_probe_channel(db):
    client = AsyncClient()
    assert (await client.get("/healthz")).status_code == 200
    layer = health.get_channel_layer()
    before = len(layer.channels)
    for _ in range(20):
        assert (await client.get("/healthz")).status_code == 200
    assert len(layer.channels) == before


async def test_typing_with_the_channel_layer_away_is_dropped_not_fatal(live_hospital, monkeypatch):
    async def refuse(*args, **kwargs):
        raise ConnectionError("injected: Redis is restarting")

    monkeypatch.setattr("chat.consumers.rounds.send_ephemeral", refuse)
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    assert await ok(bob, {"type": "typing", "thread": h.thread.pk, "active": True}) == {}
    assert "server_time" in await ok(bob, {"type": "ping"})  # the socket stays
    await finish(bob)


async def test_a_socket_that_cannot_be_set_up_is_told_and_released(live_hospital, monkeypatch):
    """The database fails while a socket opens (its departments unread): the client is
    told internal_error and the socket closes with 4500. It is no longer counted
    against its user nor held by the process; once, it stayed both, and daphne closed
    it with 1011."""
    from chat.consumers import rounds as consumer_module
    from chat.consumers.limits import connections
    from tests.support import open_socket

    h = live_hospital
    real = consumer_module.room_actions.list_my_departments

    def restarting(user):
        raise OperationalError("injected: terminating connection due to administrator command")

    monkeypatch.setattr(consumer_module.room_actions, "list_my_departments", restarting)
    process = this_process()
    before = len(process.consumers)
    communicator = await open_socket(await token_for(h.nurse_alice))
    connected, _ = await communicator.connect()
    assert connected
    refusal = await recv(communicator)
    assert refusal["type"] == "error" and refusal["code"] == "internal_error"
    assert refusal["data"] == {"retry": True}
    await assert_closed(communicator, protocol.CLOSE_INTERNAL)
    await communicator.disconnect()  # as daphne reports the close
    assert connections.counts.get(h.nurse_alice.pk, 0) == 0
    assert len(process.consumers) == before
    monkeypatch.setattr(consumer_module.room_actions, "list_my_departments", real)
    alice, hello = await connect_as(h.nurse_alice)  # the database is back: so is she
    assert hello["type"] == "hello"
    await finish(alice)


@pytest.mark.slow
async def test_a_live_event_whose_gap_cannot_be_read_waits_for_the_sweep(
    live_hospital, monkeypatch, settings
):
    """A publication is lost, the next event shows the gap, and reading the gap back
    fails (the database restarting): the socket stays open, and the sweep sends both
    events, in order, once the database answers."""
    from chat.consumers import rounds as consumer_module

    h = live_hospital
    publish = batching.publish_all
    dropped = []

    async def lose_the_first(publications):
        if not dropped:
            dropped.append(publications)
            raise ConnectionError("injected: Redis is restarting")
        await publish(publications)

    real = consumer_module.chat_actions.events_after
    failures = []

    def fail_once(*args, **kwargs):
        if not failures:
            failures.append(args)
            raise OperationalError("injected: the database is restarting")
        return real(*args, **kwargs)

    # Sweeps far enough apart that the second post's event, not a sweep, finds the gap.
    settings.ROUNDS_DELIVERY_SWEEP_SECONDS = 1.5
    monkeypatch.setattr(batching, "publish_all", lose_the_first)
    monkeypatch.setattr(consumer_module.chat_actions, "events_after", fail_once)
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    # The acks alone: the first post's own echo is lost with its publication.
    first = await ok(bob, post_frame(sealed(h, "surgeon_bob", h.thread, "bob-gapfail-1")))
    second = await ok(bob, post_frame(sealed(h, "surgeon_bob", h.thread, "bob-gapfail-2")))
    got = [await recv(alice, timeout=6), await recv(alice, timeout=6)]
    # What failed was a live delivery's read of its one-event gap (a sweep reads both).
    assert len(failures) == 1 and failures[0][3] == 1, failures
    assert [f["message"]["id"] for f in got] == [first["message_id"], second["message_id"]]
    await assert_alive(alice)
    await finish(bob)
    await finish(alice)


async def test_a_frame_behind_a_late_publication_waits_for_it_not_for_the_database(
    live_hospital, monkeypatch
):
    """Another process committed the first post and publishes it a moment late: the
    second post's frame, ahead of it, is held until it comes, then both go in order,
    and the gap is never read back from the database (GAP_WAIT_SECONDS)."""
    from chat.consumers import delivery as consumer_module

    h = live_hospital
    publish = batching.publish_all
    late: list[asyncio.Task] = []
    second_published = asyncio.Event()

    async def delay_the_first(publications):
        if not late:
            late.append(asyncio.ensure_future(delayed(publications)))
            return
        await publish(publications)
        second_published.set()

    async def delayed(publications):
        # Published once the second is: its frame reaches Alice first.
        await asyncio.wait_for(second_published.wait(), 5)
        await publish(publications)

    read_back = []
    real = consumer_module.chat_actions.events_after

    def spy(*args, **kwargs):
        read_back.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(batching, "publish_all", delay_the_first)
    monkeypatch.setattr(consumer_module.chat_actions, "events_after", spy)
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    first = await ok(bob, post_frame(sealed(h, "surgeon_bob", h.thread, "bob-late-1")))
    second = await ok(bob, post_frame(sealed(h, "surgeon_bob", h.thread, "bob-late-2")))
    got = [await recv(alice, timeout=3), await recv(alice, timeout=3)]
    assert [f["message"]["id"] for f in got] == [first["message_id"], second["message_id"]]
    assert [f["event_seq"] for f in got] == [got[0]["event_seq"], got[0]["event_seq"] + 1]
    assert read_back == []
    await asyncio.sleep(consumer_module.GAP_WAIT_SECONDS * 2)
    await assert_quiet(alice)
    await finish(bob)
    await finish(alice)
