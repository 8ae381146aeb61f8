"""bench/messaging.py's two measurements, against the floor, over raw websockets.

Same shape as for Rounds, so the figures compare: the same counts, rate and
window, the same number of sockets in the group (every sender receives its
own and the others' frames, as Rounds' members receive `message.new`), the
receiver on the last process, frames of Rounds' size, decoded as JSON on
arrival as the SDK does. A sender's "ack" is its own frame coming back
through the group: the floor's nearest match to Rounds' ack after commit.
"""

import asyncio
import base64
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable

import websockets

from bench import cpu
from bench.messaging import percentile

# A Rounds message.post with a 256-byte envelope v2 is about 980 bytes of
# JSON, the message.new it fans out a little more; the floor's frames are 1000.
FRAME_BYTES = 1000
_PADDING = base64.b64encode(os.urandom(FRAME_BYTES)).decode()


def frame(frame_id: str, sender: int) -> str:
    """A message.post-sized JSON frame carrying its id and send time."""
    head = json.dumps(
        {"type": "message.post", "id": frame_id, "sender": sender, "sent_at": time.perf_counter()}
    )
    room = FRAME_BYTES - len(head) - len(', "body": ""')
    return f'{head[:-1]}, "body": "{_PADDING[: max(0, room)]}"}}'


async def connect(url: str) -> websockets.ClientConnection:
    """A socket with the client's options (bench/messaging.py goes through client/transport.py)."""
    return await websockets.connect(
        url.replace("http", "ws", 1) + "/ws/", max_size=2**22, open_timeout=30
    )


async def read_frames(ws: websockets.ClientConnection, on_frame: Callable[[dict], None]) -> None:
    """Decode every frame as it arrives until the socket closes."""
    try:
        async for raw in ws:
            on_frame(json.loads(raw))
    except websockets.ConnectionClosed:
        pass


async def until_all_hear(
    senders: list[websockets.ClientConnection], listeners: list[set[str]]
) -> None:
    """Each sender sends a probe until every listener has heard every sender's probe.

    Why: with Redis the layer may subscribe a socket's group a moment after the
    handshake; the measurement starts once delivery is established.
    """
    probes = [f"probe-{i}" for i in range(len(senders))]
    deadline = time.monotonic() + 30
    while not all(heard.issuperset(probes) for heard in listeners):
        if time.monotonic() > deadline:
            raise RuntimeError("the floor did not relay the probes")
        for index, (ws, probe) in enumerate(zip(senders, probes, strict=True)):
            await ws.send(frame(probe, index))
        await asyncio.sleep(0.05)


async def run_latency(urls: list[str], count: int = 500, rate: float = 100.0) -> dict:
    sender = await connect(urls[0])
    receiver = await connect(urls[-1])
    probes_heard: set[str] = set()
    latencies: list[float] = []
    all_received = asyncio.Event()

    def on_receiver_frame(message: dict) -> None:
        if message["id"].startswith("probe-"):
            probes_heard.add(message["id"])
            return
        latencies.append((time.perf_counter() - message["sent_at"]) * 1000)
        if len(latencies) >= count:
            all_received.set()

    readers = [
        asyncio.create_task(read_frames(receiver, on_receiver_frame)),
        # The sender's echoes are read and decoded too, as the SDK reads every frame.
        asyncio.create_task(read_frames(sender, lambda message: None)),
    ]
    await until_all_hear([sender], [probes_heard])
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for number in range(count):
        await sender.send(frame(f"m{number}", 0))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.wait_for(all_received.wait(), 60)
    for ws in (sender, receiver):
        await ws.close()
    await asyncio.gather(*readers)
    return {
        "messages": count,
        "offered_rate": rate,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


async def run_throughput(urls: list[str], total: int = 2000, window: int = 16) -> dict:
    sender_count = 4
    per_sender = total // sender_count
    senders = [await connect(urls[i % len(urls)]) for i in range(sender_count)]
    receiver = await connect(urls[-1])
    heard: list[set[str]] = [set() for _ in range(sender_count + 1)]  # probes, per socket
    gates = [asyncio.Semaphore(window) for _ in range(sender_count)]
    acked: list[set[str]] = [set() for _ in range(sender_count)]
    all_acked = [asyncio.Event() for _ in range(sender_count)]
    received: list[str] = []
    all_received = asyncio.Event()
    last_received_at = 0.0

    def on_sender_frame(index: int) -> Callable[[dict], None]:
        def on_frame(message: dict) -> None:
            if message["id"].startswith("probe-"):
                heard[index].add(message["id"])
            elif message["sender"] == index and message["id"] not in acked[index]:
                acked[index].add(message["id"])
                gates[index].release()
                if len(acked[index]) == per_sender:
                    all_acked[index].set()

        return on_frame

    def on_receiver_frame(message: dict) -> None:
        nonlocal last_received_at
        if message["id"].startswith("probe-"):
            heard[-1].add(message["id"])
            return
        received.append(message["id"])
        last_received_at = time.perf_counter()
        if len(received) >= per_sender * sender_count:
            all_received.set()

    readers = [
        *(
            asyncio.create_task(read_frames(ws, on_sender_frame(index)))
            for index, ws in enumerate(senders)
        ),
        asyncio.create_task(read_frames(receiver, on_receiver_frame)),
    ]
    await until_all_hear(senders, heard)

    async def send(index: int) -> None:
        for number in range(per_sender):
            await gates[index].acquire()
            await senders[index].send(frame(f"s{index}-{number}", index))
        await all_acked[index].wait()

    cpu_before = cpu.snapshot()
    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(send(i) for i in range(sender_count))), 120)
    # A lost frame is counted, not waited for forever.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_received.wait(), 10)
    elapsed = last_received_at - started
    cores = cpu.spent(cpu_before, time.perf_counter() - started)
    for ws in (*senders, receiver):
        await ws.close()
    await asyncio.gather(*readers)
    sent_and_acked = set().union(*acked)
    return {
        "messages": len(sent_and_acked),
        "senders": sender_count,
        "window": window,
        "seconds": round(elapsed, 3),
        "msg_per_s": round(len(sent_and_acked) / elapsed, 1),
        "lost": len(sent_and_acked - set(received)),
        "duplicates": len(received) - len(set(received)),
        "cores": cores,
    }
