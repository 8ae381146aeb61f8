"""Catch-up: a member back after a shift away, resuming thousands of missed messages.

`nurse_alice` connects, keeps the cursor `hello` gave her, and goes away;
four colleagues post `messages` envelopes into one thread (pipelined,
`window` in flight each, as in bench/messaging.py's throughput); then Alice
reconnects with the client's own `reconnect()` (client.transport's
`Connection`, which the SDK is built on), which resumes from her cursor
and releases the replayed events in order, each once. Timed from the
`resume` frame to the last missed message in her hands; every one must
arrive once, in order, with no gap.
"""

import asyncio
import os
import time
import uuid

from bench.keys import enable_encryption
from bench.messaging import demo_institution, prepare_thread, signed_in
from bench.stack import DEMO_PASSWORD
from client.transport import Connection

RETURNING = "nurse_alice"
SENDERS = ["surgeon_bob", "intern_erin", "nurse_frank", "head_carol"]
# The client's request timeout covers the whole resume, replay included: it must
# outlast the replay of everything missed, or `reconnect()` gives up.
RESUME_TIMEOUT = 600.0


async def post_all(
    senders: list[Connection], thread: int, envelopes: list[list[tuple[str, dict]]], window: int
) -> set[int]:
    """Each sender posts its envelopes with `window` in flight; the acked thread seqs."""
    acked: set[int] = set()

    async def send(client: Connection, mine: list[tuple[str, dict]]) -> None:
        gate = asyncio.Semaphore(window)

        async def one(client_msg_id: str, envelope: dict) -> None:
            async with gate:
                ack = await client.post(thread, envelope, client_msg_id)
                acked.add(ack["seq"])

        await asyncio.gather(*(one(*item) for item in mine))

    await asyncio.gather(
        *(send(client, mine) for client, mine in zip(senders, envelopes, strict=True))
    )
    return acked


def check_order(frames: list[dict], department: int) -> tuple[list[int], int]:
    """The thread seqs of the message frames as received, and how many came out of order.

    A frame is out of order when its department `event_seq`, or its thread
    seq, is below one received before it: repeats are duplicates, and gaps
    losses, counted apart.
    """
    out_of_order = 0
    last_event = last_seq = 0
    seqs: list[int] = []
    for frame in frames:
        if frame.get("department") != department or "event_seq" not in frame:
            continue
        backwards = frame["event_seq"] < last_event
        last_event = max(last_event, frame["event_seq"])
        if frame["type"] == "message.new":
            seq = frame["message"]["seq"]
            backwards = backwards or seq < last_seq
            last_seq = max(last_seq, seq)
            seqs.append(seq)
        out_of_order += backwards
    return seqs, out_of_order


async def run_catchup(
    urls: list[str], messages: int = 10000, window: int = 32, *, var_dir: str | os.PathLike
) -> dict:
    """`var_dir` is the deployment's (`Stack.var_dir`): the demo institution's keys."""
    senders = [await signed_in(urls[i % len(urls)], name) for i, name in enumerate(SENDERS)]
    department, thread = await prepare_thread(senders[0])
    keys = await enable_encryption(senders, department, demo_institution(var_dir))
    # Envelopes are made before the clock starts: this measures the server.
    envelopes = [
        [
            (cmid, keys.envelope(client.user["id"], thread, cmid))
            for cmid in (uuid.uuid4().hex for _ in range(index, messages, len(senders)))
        ]
        for index, client in enumerate(senders)
    ]

    alice = Connection(urls[-1], timeout=RESUME_TIMEOUT)
    await alice.login(RETURNING, DEMO_PASSWORD)
    await alice.connect()
    # The client keeps her cursor (`alice.cursor`) across the disconnect; reconnect() resumes
    # from it.
    await alice.disconnect()

    for client in senders:
        await client.connect()
    started = time.perf_counter()
    acked = await post_all(senders, thread, envelopes, window)
    post_seconds = time.perf_counter() - started
    # Only Alice's socket is open while she catches up.
    await asyncio.gather(*(client.aclose() for client in senders))

    resume_sent_at = 0.0
    resume = alice.resume

    async def timed_resume(cursor: dict[str, int] | None = None) -> dict:
        """The client's own resume, clocked at the moment `reconnect()` sends it."""
        nonlocal resume_sent_at
        resume_sent_at = time.perf_counter()
        return await resume(cursor)

    alice.resume = timed_resume
    await alice.reconnect()
    # reconnect() has released the whole replay to the queue: take it as the app would.
    frames = []
    while not alice.events.empty():
        frames.append(alice.events.get_nowait())
    caught_up_at = time.perf_counter()
    catchup_seconds = caught_up_at - resume_sent_at
    await alice.aclose()

    seqs, out_of_order = check_order(frames, department)
    return {
        "messages": len(acked),
        "post_seconds": round(post_seconds, 3),
        "catchup_seconds": round(catchup_seconds, 3),
        "msgs_per_s_catchup": round(len(set(seqs) & acked) / catchup_seconds, 1),
        "lost": len(acked - set(seqs)),
        "duplicates": len(seqs) - len(set(seqs)),
        "out_of_order": out_of_order,
    }
