"""Posting through the full path: auth, validation, commit, audit, fan-out.

latency    — one sender at a fixed offered rate, one receiver: send → receive.
throughput — four senders pipelining posts, one receiver counting; zero loss
             and zero duplicates are checked, not assumed.
"""

import asyncio
import base64
import os
import statistics
import time
import uuid

from bench.stack import DEMO_PASSWORD
from client import RoundsClient

BENCH_LIMITS = {
    # The per-socket flood limit protects a real deployment; a benchmark
    # measures the server behind it.
    "ROUNDS_WS_RATE_PER_SECOND": "1000000",
    "ROUNDS_WS_RATE_BURST": "1000000",
}


def opaque_envelope(size: int = 256) -> dict:
    return {"header": {"v": 1}, "ciphertext": base64.b64encode(os.urandom(size)).decode()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def signed_in(url: str, username: str) -> RoundsClient:
    client = RoundsClient(url, timeout=30)
    await client.login(username, DEMO_PASSWORD)
    return client


async def prepare_thread(url: str) -> tuple[RoundsClient, int]:
    bob = await signed_in(url, "surgeon_bob")
    department = (await bob.departments())[0]
    patient = (await bob.find_patients(name="le"))[0]
    thread = await bob.create_thread(department["id"], patient["id"], "Benchmark thread")
    return bob, thread["id"]


async def run_latency(urls: list[str], count: int = 500, rate: float = 100.0) -> dict:
    sender, thread = await prepare_thread(urls[0])
    receiver = await signed_in(urls[-1], "nurse_alice")
    await sender.connect()
    await receiver.connect()
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        while len(latencies) < count:
            frame = await receiver.next_event("message.new", wait=30)
            started = sent.get(frame["message"]["client_msg_id"])
            if started is not None:
                latencies.append((time.perf_counter() - started) * 1000)

    receiving = asyncio.create_task(receive())
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for _ in range(count):
        client_msg_id = uuid.uuid4().hex
        sent[client_msg_id] = time.perf_counter()
        await sender.post(thread, opaque_envelope(), client_msg_id)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.wait_for(receiving, 60)
    for client in (sender, receiver):
        await client.aclose()
    return {
        "messages": count,
        "offered_rate": rate,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
    }


async def run_throughput(urls: list[str], total: int = 2000, window: int = 16) -> dict:
    setup, thread = await prepare_thread(urls[0])
    await setup.aclose()
    senders = [
        await signed_in(urls[i % len(urls)], name)
        for i, name in enumerate(["surgeon_bob", "nurse_alice", "intern_erin", "nurse_frank"])
    ]
    receiver = await signed_in(urls[-1], "head_carol")
    for client in (*senders, receiver):
        await client.connect()
    per_sender = total // len(senders)
    acked: set[int] = set()
    received: list[int] = []

    async def receive() -> None:
        while len(received) < per_sender * len(senders):
            frame = await receiver.next_event("message.new", wait=30)
            received.append(frame["message"]["seq"])

    async def send(client: RoundsClient) -> None:
        gate = asyncio.Semaphore(window)

        async def one() -> None:
            async with gate:
                ack = await client.post(thread, opaque_envelope(), uuid.uuid4().hex)
                acked.add(ack["seq"])

        await asyncio.gather(*(one() for _ in range(per_sender)))

    receiving = asyncio.create_task(receive())
    started = time.perf_counter()
    await asyncio.gather(*(send(client) for client in senders))
    await asyncio.wait_for(receiving, 120)
    elapsed = time.perf_counter() - started
    for client in (*senders, receiver):
        await client.aclose()
    duplicates = len(received) - len(set(received))
    lost = len(acked - set(received))
    return {
        "messages": len(acked),
        "senders": len(senders),
        "window": window,
        "seconds": round(elapsed, 3),
        "msg_per_s": round(len(acked) / elapsed, 1),
        "lost": lost,
        "duplicates": duplicates,
    }
