"""A consult over the socket: its guest, no member of the department, posts in the consult's
thread under its thread key and hears that thread's events on their own sockets, and
nothing else of the department (chat/events.py `guest_user_id`, the consumer's
`rounds_guest`)."""

import pytest
from channels.db import database_sync_to_async

from tests.support import sealed
from tests.support.consults import consult_sealed, open_consult
from tests.support.sockets import (
    assert_quiet,
    connect_as,
    expect_refused,
    finish,
    post,
    post_frame,
    recv,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.slow
async def test_the_guest_writes_and_hears_the_consult_and_nothing_else(live_hospital):
    h = live_hospital
    key = await database_sync_to_async(open_consult)(h)
    thread_id = key.thread
    ines, _ = await connect_as(h.nurse_ines)
    bob, _ = await connect_as(h.surgeon_bob)
    grace, _ = await connect_as(h.head_grace)

    question = consult_sealed(h, "nurse_ines", thread_id, key, "ines-sock-0001", b"Flap dusky?")
    ack = await post(ines, question)
    assert ack["thread"] == thread_id
    heard = await recv(bob)
    assert heard["type"] == "message.new" and heard["message"]["envelope"] == question

    answer = consult_sealed(h, "surgeon_bob", thread_id, key, "bob-sock-0001", b"On my way")
    await post(bob, answer)
    frame = await recv(ines)
    assert frame["type"] == "message.new"
    assert frame["message"]["thread"] == thread_id
    assert frame["message"]["envelope"] == answer

    # Another thread of the department: not for the guest's sockets, nor theirs to post in.
    other = sealed(h, "surgeon_bob", h.thread, "bob-sock-0002")
    await post(bob, other)
    await assert_quiet(ines, grace)
    stray = sealed(h, "nurse_ines", h.thread, "ines-sock-0002", department=h.plastic)
    await expect_refused(ines, post_frame(stray), "not_found")
    for socket in (ines, bob, grace):
        await finish(socket)
