"""A run of one department's events is published as one channel message (chat/events.py
`coalesced`), and every socket still gets each event once, in order."""

import asyncio

import pytest

from chat import events
from chat.consumers import batching
from chat.consumers import delivery as consumer_module
from tests.support import sealed
from tests.support.sockets import assert_quiet, connect_as, finish, ok, post_frame, recv

pytestmark = pytest.mark.django_db(transaction=True)


def event(department: int, seq: int) -> tuple[str, dict]:
    return (
        events.department_group(department),
        {
            "type": "rounds.event",
            "department": department,
            "seq": seq,
            "frame": f"frame {department}/{seq}",
            "committed_at": 100.0 + seq,
        },
    )


def test_neighbouring_events_of_one_department_become_one_message_in_order():
    guest = ("user.5", {"type": "rounds.guest", "department": 1, "frame": "guest copy"})
    merged = events.coalesced(
        [event(1, 10), event(1, 11), guest, event(1, 12), event(2, 7), event(2, 8), event(1, 13)]
    )
    assert [(group, message["type"], message.get("seq")) for group, message in merged] == [
        (events.department_group(1), "rounds.event", 10),
        ("user.5", "rounds.guest", None),
        (events.department_group(1), "rounds.event", 12),
        (events.department_group(2), "rounds.event", 7),
        (events.department_group(1), "rounds.event", 13),
    ]
    assert merged[0][1]["then"] == [[11, "frame 1/11", 111.0]]
    assert "then" not in merged[2][1] and "then" not in merged[4][1]
    assert merged[3][1]["then"] == [[8, "frame 2/8", 108.0]]
    assert events.coalesced([]) == []


@pytest.fixture
def held_publications(monkeypatch):
    """Publications kept until released, then published together, as a batch's are."""
    held: list = []
    sent: list[dict] = []
    layer = events.channel_layer()
    real_send = layer.group_send

    async def keep(publications):
        held.extend(publications)

    async def counted(group, message):
        sent.append(message)
        await real_send(group, message)

    monkeypatch.setattr(batching, "publish_all", keep)
    monkeypatch.setattr(layer, "group_send", counted)
    return held, sent


async def post_three(h, bob) -> list[int]:
    """Acknowledged one after the other; their events held (`held_publications`)."""
    return [
        (await ok(bob, post_frame(sealed(h, "surgeon_bob", h.thread, f"bob-run-{n}"))))[
            "message_id"
        ]
        for n in range(3)
    ]


async def test_a_run_of_events_in_one_message_reaches_each_socket_once_in_order(
    live_hospital, held_publications, monkeypatch
):
    held, sent = held_publications
    read_back = []
    real = consumer_module.chat_actions.events_after
    monkeypatch.setattr(
        consumer_module.chat_actions,
        "events_after",
        lambda *args, **kwargs: read_back.append(args) or real(*args, **kwargs),
    )
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ids = await post_three(h, bob)
    await events.publish_all(held)
    # One channel message carried the three events.
    runs = [m for m in sent if m["type"] == "rounds.event"]
    assert len(runs) == 1 and len(runs[0]["then"]) == 2
    for socket in (alice, bob):
        got = [await recv(socket, timeout=3) for _ in range(3)]
        assert [f["message"]["id"] for f in got] == ids
        seqs = [f["event_seq"] for f in got]
        assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert read_back == []  # nothing read from the database: no gap
    await asyncio.sleep(consumer_module.GAP_WAIT_SECONDS * 2)
    await assert_quiet(alice, bob)
    await finish(bob)
    await finish(alice)


@pytest.mark.slow
async def test_a_reader_that_knows_only_the_first_event_still_gets_the_rest(
    live_hospital, held_publications
):
    """A process of an earlier release reads a run's first event and not "then" (as
    here, where "then" is taken off): its sockets are caught up from the database."""
    held, _ = held_publications
    h = live_hospital
    bob, _ = await connect_as(h.surgeon_bob)
    alice, _ = await connect_as(h.nurse_alice)
    ids = await post_three(h, bob)
    for group, message in events.coalesced(held):
        message.pop("then", None)
        await events.channel_layer().group_send(group, message)
    got = [await recv(alice, timeout=3) for _ in range(3)]
    assert [f["message"]["id"] for f in got] == ids
    await asyncio.sleep(1.2)  # the sweeps after: nothing twice
    await assert_quiet(alice)
    await finish(bob)
    await finish(alice)
