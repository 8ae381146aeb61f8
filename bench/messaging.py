"""Posting through the full path: auth, validation, commit, audit, fan-out.

Every post is a real signed, encrypted v2 envelope (bench/keys.py: a verified
membership chain and a key version made at its head), checked by the server
like any other. The clients speak the raw protocol (client.transport's
`Connection`) and make their envelopes themselves.

latency    — one sender at a fixed offered rate, one receiver: send → receive.
throughput — four senders pipelining posts, one receiver counting; zero loss
             and zero duplicates are checked, not assumed.
"""

import asyncio
import os
import statistics
import time
import uuid

from bench import cpu
from bench.keys import Institution, enable_encryption
from bench.stack import DEMO_PASSWORD
from client.transport import Connection

BENCH_LIMITS = {
    # The per-socket flood limit protects a real deployment; a benchmark
    # measures the server behind it.
    "ROUNDS_WS_RATE_PER_SECOND": "1000000",
    "ROUNDS_WS_RATE_BURST": "1000000",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def signed_in(url: str, username: str) -> Connection:
    client = Connection(url, timeout=30)
    await client.login(username, DEMO_PASSWORD)
    return client


def demo_institution(var_dir: str | os.PathLike) -> Institution:
    """The institution seed_demo made for a bench deployment (`Stack.var_dir`)."""
    return Institution.demo(var_dir, DEMO_PASSWORD)


async def prepare_thread(bob: Connection) -> tuple[int, int]:
    """A new thread in Bob's department: (department id, thread id)."""
    department = (await bob.departments())[0]
    patient = (await bob.find_patients(name="le"))[0]
    thread = await bob.create_thread(department["id"], patient["id"], "Benchmark thread")
    return department["id"], thread["id"]


async def run_latency(
    urls: list[str], count: int = 500, rate: float = 100.0, *, var_dir: str | os.PathLike
) -> dict:
    """`var_dir` is the deployment's (`Stack.var_dir`): the demo institution's keys."""
    sender = await signed_in(urls[0], "surgeon_bob")
    department, thread = await prepare_thread(sender)
    receiver = await signed_in(urls[-1], "nurse_alice")
    keys = await enable_encryption([sender], department, demo_institution(var_dir))
    me = sender.user["id"]
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
        envelope = keys.envelope(me, thread, client_msg_id)
        sent[client_msg_id] = time.perf_counter()
        await sender.post(thread, envelope, client_msg_id)
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


async def run_throughput(
    urls: list[str], total: int = 2000, window: int = 16, *, var_dir: str | os.PathLike
) -> dict:
    """`var_dir` is the deployment's (`Stack.var_dir`): the demo institution's keys."""
    senders = [
        await signed_in(urls[i % len(urls)], name)
        for i, name in enumerate(["surgeon_bob", "nurse_alice", "intern_erin", "nurse_frank"])
    ]
    department, thread = await prepare_thread(senders[0])
    keys = await enable_encryption(senders, department, demo_institution(var_dir))
    # Envelopes are made before the clock starts: this measures the server.
    envelopes = {
        client.user["id"]: [
            (cmid, keys.envelope(client.user["id"], thread, cmid))
            for cmid in (uuid.uuid4().hex for _ in range(total // 4))
        ]
        for client in senders
    }
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

    async def send(client: Connection) -> None:
        gate = asyncio.Semaphore(window)

        async def one(client_msg_id: str, envelope: dict) -> None:
            async with gate:
                ack = await client.post(thread, envelope, client_msg_id)
                acked.add(ack["seq"])

        await asyncio.gather(*(one(*item) for item in envelopes[client.user["id"]][:per_sender]))

    receiving = asyncio.create_task(receive())
    cpu_before = cpu.snapshot()
    started = time.perf_counter()
    await asyncio.gather(*(send(client) for client in senders))
    await asyncio.wait_for(receiving, 120)
    elapsed = time.perf_counter() - started
    cores = cpu.spent(cpu_before, elapsed)
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
        "cores": cores,
    }
