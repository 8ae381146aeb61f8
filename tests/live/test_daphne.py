"""Rounds as it is deployed: real daphne processes, driven by the async SDK.

With REDIS_URL the module runs two daphne processes sharing Redis (and
PostgreSQL when DATABASE_URL names it), and the personas sign in on
different processes, so every delivery crosses the channel layer between
them. Without it, one process on SQLite with the in-memory layer.

The SDK is pinned to the demo institution's keys (var/institution.json);
the tests make their own v2 envelopes (tests/live/keys.py).
"""

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import websockets

from client.sdk import RoundsClient, RoundsClientError
from client.transport import Connection
from core.crypto import RoomKey
from tests.live.keys import PLAINTEXT, LiveKeys
from tests.live.sdk import signed_in as pinned
from tests.live.servers import LiveCluster, Server

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@contextlib.asynccontextmanager
async def signed_in(server: Server, username: str, *, connect: bool = True):
    """The SDK pinned to the demo's keys, remembering under the cluster's folder."""
    async with pinned(server, username, connect=connect, state_dir=server.root / "state") as client:
        yield client


def department_id(client: RoundsClient, name: str) -> int:
    (department,) = [d for d in client.hello["departments"] if d["name"] == name]
    return department["id"]


async def new_thread(client: RoundsClient, title: str) -> dict:
    patients = await client.find_patients(name="le")
    assert patients, "seed_demo admits patients named Le…"
    plastic = department_id(client, "Plastic surgery")
    return await client.create_thread(plastic, patients[0]["id"], title)


async def drain(client: RoundsClient, wait: float) -> list[dict]:
    """Every event pushed within `wait` seconds."""
    frames = []
    with contextlib.suppress(TimeoutError):
        while True:
            frames.append(await client.next_event(wait=wait))
    return frames


def in_thread(thread_id: int) -> Callable[[dict], bool]:
    return lambda frame: frame.get("message", {}).get("thread") == thread_id


@pytest.fixture
async def clients() -> AsyncIterator[contextlib.AsyncExitStack]:
    async with contextlib.AsyncExitStack() as stack:
        yield stack


# --- a) two processes, one conversation ------------------------------------------------


@pytest.mark.services
async def test_two_processes_share_delivery_receipts_and_refusals(
    cluster: LiveCluster, clients, live_keys: LiveKeys
):
    one, two = cluster.servers[0], cluster.servers[1]
    assert one.port != two.port
    bob = await clients.enter_async_context(signed_in(one, "surgeon_bob"))
    alice = await clients.enter_async_context(signed_in(two, "nurse_alice"))
    ines = await clients.enter_async_context(signed_in(two, "nurse_ines"))
    plastic = department_id(bob, "Plastic surgery")
    await live_keys.ready(plastic, bob, alice, ines)

    thread = await new_thread(bob, "Live: flap check")
    created = await alice.next_event(
        "thread.created", match=lambda f: f["thread"]["id"] == thread["id"]
    )
    assert created["thread"]["title"] == "Live: flap check"

    ack, body = await live_keys.post(bob, thread)
    assert ack["seq"] == 1
    pushed = await alice.next_event("message.new", match=in_thread(thread["id"]))
    message = pushed["message"]
    assert (message["id"], message["seq"]) == (ack["message_id"], 1)
    assert message["sender"]["username"] == "surgeon_bob"
    assert message["envelope"] == body  # relayed as it came, never decoded
    # Alice's device opens it: the verified chain and key version, her wrap of the room key,
    # Bob's signature by the key the chain admitted, the ciphertext.
    assert await live_keys.open(alice, message) == PLAINTEXT

    read = await alice.read(thread["id"], ack["seq"])
    assert read["advanced"] and read["up_to_seq"] == 1
    receipt = await bob.next_event("receipt.new", match=lambda f: f["thread"] == thread["id"])
    assert receipt["user"]["username"] == "nurse_alice" and receipt["up_to_seq"] == 1

    # Vascular surgery's nurse: the same answer as for a thread that does not exist.
    # Her envelope is signed and names the thread, under a room key she made up.
    made_up = RoomKey.generate(department=plastic, version=1)
    for attempt in (
        lambda: live_keys.post(ines, thread, room_key=made_up),
        lambda: ines.history(thread["id"]),
        lambda: ines.read(thread["id"], 1),
    ):
        with pytest.raises(RoundsClientError) as refused:
            await attempt()
        assert refused.value.code == "not_found"
    with pytest.raises(RoundsClientError) as refused:
        await ines.call("GET", f"/api/threads/{thread['id']}/messages")
    assert (refused.value.code, refused.value.status) == ("not_found", 404)
    leaked = [f for f in await drain(ines, 0.3) if f.get("department") == plastic]
    assert leaked == []


# --- b) reconnect: every missed message once, in order ------------------------------------


async def test_a_reconnecting_client_gets_each_missed_message_once_in_order(
    cluster: LiveCluster, clients, live_keys: LiveKeys
):
    bob = await clients.enter_async_context(signed_in(cluster.servers[0], "surgeon_bob"))
    alice = await clients.enter_async_context(signed_in(cluster.servers[-1], "nurse_alice"))
    await live_keys.ready(department_id(bob, "Plastic surgery"), bob, alice)
    thread = await new_thread(bob, "Live: reconnect")
    await alice.next_event("thread.created", match=lambda f: f["thread"]["id"] == thread["id"])

    await alice.disconnect()
    acks = [(await live_keys.post(bob, thread, b"note %d" % n))[0] for n in range(30)]
    assert [a["seq"] for a in acks] == list(range(1, 31))

    resumed = await alice.reconnect()
    assert resumed["ignored"] == []
    seqs = []
    while len(seqs) < 30:
        frame = await alice.next_event("message.new", match=in_thread(thread["id"]))
        seqs.append(frame["message"]["seq"])
    assert seqs == list(range(1, 31))
    again = [f for f in await drain(alice, 0.5) if in_thread(thread["id"])(f)]
    assert again == []
    plastic = str(department_id(alice, "Plastic surgery"))
    assert alice.cursor[plastic] == resumed["cursor"][plastic]


async def test_an_event_racing_the_resume_still_comes_once_and_in_order(
    cluster: LiveCluster, clients, monkeypatch, live_keys: LiveKeys
):
    """The new socket delivers live events from its hello on, and `resume` then brings the
    older ones: an event landing in between comes before them (or, from a server that
    replays it, twice). The SDK must still hand each to the app once, in order."""
    bob = await clients.enter_async_context(signed_in(cluster.servers[0], "surgeon_bob"))
    alice = await clients.enter_async_context(signed_in(cluster.servers[-1], "nurse_alice"))
    await live_keys.ready(department_id(bob, "Plastic surgery"), bob, alice)
    thread = await new_thread(bob, "Live: racing resume")
    await alice.next_event("thread.created", match=lambda f: f["thread"]["id"] == thread["id"])
    await alice.disconnect()
    for _ in range(3):
        await live_keys.post(bob, thread)

    connect = alice.connect

    async def connect_then_bob_posts() -> dict:
        hello = await connect()
        await live_keys.post(bob, thread)
        await asyncio.sleep(0.3)  # the live event reaches alice's new socket before her resume
        return hello

    monkeypatch.setattr(alice, "connect", connect_then_bob_posts)
    await alice.reconnect()
    frames = [f for f in await drain(alice, 0.5) if in_thread(thread["id"])(f)]
    assert [f["message"]["seq"] for f in frames] == [1, 2, 3, 4]


# --- c) the edge: health, authentication, origin ------------------------------------------


async def test_health_reports_database_and_channel_layer(cluster: LiveCluster, clients):
    # With a socket open on each process: its receive loop must not starve the check.
    for server in cluster.servers:
        await clients.enter_async_context(signed_in(server, "nurse_frank"))
    async with httpx.AsyncClient() as http:
        for server in cluster.servers:
            response = await http.get(server.url + "/healthz")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "ok"
            assert body["database"]["vendor"] == cluster.database.vendor
            assert body["channel_layer"]["backend"] == cluster.channel_backend
    if os.environ.get("REDIS_URL"):
        assert cluster.channel_backend == "RedisPubSubChannelLayer"


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["no-token", "bad-token"])
async def test_an_unauthenticated_socket_is_closed_with_4401(cluster: LiveCluster, token):
    server = cluster.servers[0]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(
        server.ws_url, origin=server.url, additional_headers=headers
    ) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_the_sdk_reports_4401_on_an_unauthenticated_connect(cluster: LiveCluster):
    client = Connection(cluster.servers[0].url)
    try:
        with pytest.raises(RoundsClientError) as refused:
            await client.connect()
        assert refused.value.data["close_code"] == 4401
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.1:1", "https://127.0.0.1:{port}"],
    ids=["other-host", "other-port", "other-scheme"],
)
async def test_a_foreign_origin_is_refused_at_the_handshake(cluster: LiveCluster, origin):
    server = cluster.servers[0]
    async with signed_in(server, "surgeon_bob", connect=False) as bob:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                server.ws_url,
                origin=origin.format(port=server.port),
                additional_headers={"Authorization": f"Bearer {bob.token}"},
                open_timeout=10,
            )
    assert refused.value.response.status_code == 403


# --- d) acknowledged means durable -------------------------------------------------------


async def test_acknowledged_messages_survive_a_killed_process(
    cluster: LiveCluster, clients, live_keys: LiveKeys
):
    server = cluster.servers[0]
    bob = await clients.enter_async_context(signed_in(server, "surgeon_bob"))
    await live_keys.ready(department_id(bob, "Plastic surgery"), bob)
    thread = await new_thread(bob, "Live: durability")
    posted = await asyncio.gather(*(live_keys.post(bob, thread) for _ in range(50)))
    acked = {ack["seq"]: ack["message_id"] for ack, _ in posted}
    assert sorted(acked) == list(range(1, 51))

    cluster.kill(server)  # SIGKILL, straight after the last ack
    await bob.disconnect()
    cluster.restart(server)

    async with signed_in(server, "nurse_alice", connect=False) as alice:
        page = await alice.call(
            "GET", f"/api/threads/{thread['id']}/messages", params={"limit": 50}
        )
    stored = {m["seq"]: m["id"] for m in page["messages"]}
    assert stored == acked
    sent = {ack["message_id"]: body for ack, body in posted}
    assert all(m["envelope"] == sent[m["id"]] for m in page["messages"])
    assert page["has_more"] is False

    # The audit trail of the killed process is whole: one entry per post, chain intact.
    out = cluster.manage(
        "shell",
        "-c",
        "import json; from io import StringIO; "
        "from django.core.management import call_command; "
        "from audit.models import AuditEvent; out = StringIO(); "
        "call_command('audit_verify', seal_first=True, stdout=out); "
        "posted = AuditEvent.objects.filter("
        f"action='message.posted', data__thread_id={thread['id']}).count(); "
        "print(json.dumps({'verify': out.getvalue(), 'posted': posted}))",
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["posted"] == 50
    assert report["verify"].startswith("audit chain ok")


async def test_a_redacted_message_becomes_a_tombstone_for_members(
    cluster: LiveCluster, live_keys, clients
):
    """Through the SDK, across both processes: Bob's post, Carol's redaction,
    Alice told live, then a history that no longer holds the ciphertext."""
    bob = await clients.enter_async_context(signed_in(cluster.servers[0], "surgeon_bob"))
    carol = await clients.enter_async_context(signed_in(cluster.servers[0], "head_carol"))
    alice = await clients.enter_async_context(signed_in(cluster.servers[-1], "nurse_alice"))
    await live_keys.ready(department_id(bob, "Plastic surgery"), bob, carol, alice)
    thread = await new_thread(bob, "Redaction")
    ack, _ = await live_keys.post(bob, thread)

    answer = await carol.redact(ack["message_id"], reason="posted in the wrong thread")
    again = await carol.redact(ack["message_id"])

    assert answer == again and answer["message_id"] == ack["message_id"]
    told = await alice.next_event("message.redacted", wait=10)
    assert told["message"] == {"id": ack["message_id"], "thread": thread["id"], "seq": ack["seq"]}
    assert told["by"]["username"] == "head_carol"
    page = await alice.history(thread["id"])
    tombstone = next(m for m in page["messages"] if m["id"] == ack["message_id"])
    assert tombstone["envelope"] is None and tombstone["redacted"]["at"] == answer["redacted_at"]
    with pytest.raises(RoundsClientError) as refused:
        await alice.open_message(tombstone, department=thread["department"])
    assert refused.value.code == "redacted"
