"""Fan-out: one sender, a whole department listening.

A department of `members` members, every one connected (round robin over the
daphne processes, the sender among them: a member's own devices receive its
messages too), one sender posting real envelopes at a fixed rate. Per
message, the time from send until the *last* member has it: what a ward
waits for before everyone has seen an update. Every member must get every
message exactly once; lost and duplicate deliveries are counted per
(member, message), not assumed.

`run_fanout_floor` is the same measurement on the floor (bench/floor/),
whose consumer broadcasts every frame to its group.
"""

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Callable

import websockets

from bench.floor import clients as floor_clients
from bench.keys import enable_encryption
from bench.messaging import demo_institution, percentile, prepare_thread, signed_in
from bench.seed_members import USERNAME_PREFIX, seed_members
from client.transport import Connection

SENDER = "surgeon_bob"
# After the last send: how long deliveries may still take before they count as lost.
DRAIN_SECONDS = 30.0


def summarize(members: int, sent: dict[str, float], arrivals: list[dict[str, list[float]]]) -> dict:
    """Per-message "all delivered" times and per-delivery latencies, from send times.

    `arrivals[member][message]` lists every time that member got that message,
    so a missing entry is a loss and a second one a duplicate. A message some
    member never got has no "all delivered" time; it is counted as lost.
    """
    all_delivered: list[float] = []
    each: list[float] = []
    lost = duplicates = 0
    for message, sent_at in sent.items():
        firsts = []
        for heard in arrivals:
            times = heard.get(message, [])
            if not times:
                lost += 1
                continue
            duplicates += len(times) - 1
            firsts.append((times[0] - sent_at) * 1000)
        each.extend(firsts)
        if len(firsts) == len(arrivals):
            all_delivered.append(max(firsts))
    return {
        "members": members,
        "messages": len(sent),
        "all_p50_ms": round(statistics.median(all_delivered), 2) if all_delivered else None,
        "all_p95_ms": round(percentile(all_delivered, 95), 2) if all_delivered else None,
        "all_p99_ms": round(percentile(all_delivered, 99), 2) if all_delivered else None,
        "each_p50_ms": round(statistics.median(each), 2) if each else None,
        "lost": lost,
        "duplicates": duplicates,
    }


async def member_names(client: Connection, department: int) -> list[str]:
    listing = await client.call("GET", f"/api/departments/{department}/members")
    return [entry["user"]["username"] for entry in listing]


async def department_of(
    sender: Connection, department: int, members: int, env: dict[str, str] | None
) -> list[str]:
    """`members` usernames of the department, the sender first; seeds the missing ones."""
    names = await member_names(sender, department)
    missing = members - len(names)
    if missing > 0:
        if env is None:
            raise RuntimeError(
                f"the department has {len(names)} members, {members} asked: pass the stack's "
                "env so bench/seed_members.py can add the rest"
            )
        bench_members = sum(name.startswith(USERNAME_PREFIX) for name in names)
        seed_members(env, bench_members + missing)
        names = await member_names(sender, department)
    others = [name for name in names if name != sender.user["username"]]
    # The demo's own members first, then bench_member_0001…, so small runs need no seeding.
    others.sort(key=lambda name: (name.startswith(USERNAME_PREFIX), name))
    return [sender.user["username"], *others][:members]


async def run_fanout(
    urls: list[str],
    members: int = 50,
    count: int = 200,
    rate: float = 20.0,
    *,
    var_dir: str | os.PathLike,
    env: dict[str, str] | None = None,
) -> dict:
    """Rounds: `count` posts at `rate` msg/s to a department of `members`, all connected.

    `var_dir` is the deployment's (`Stack.var_dir`): the demo institution's
    keys. `env` is the stack's environment (`Stack.env`), needed only when
    the demo department (5 members) is smaller than `members`.
    """
    sender = await signed_in(urls[0], SENDER)
    department, thread = await prepare_thread(sender)
    names = await department_of(sender, department, members, env)
    # A few sign-ins at a time: each is an Argon2 hash, and fifty at once starve the
    # processes' health checks (HAProxy would take them out of rotation).
    gate = asyncio.Semaphore(4)

    async def sign_in(url: str, name: str) -> Connection:
        async with gate:
            return await signed_in(url, name)

    others = await asyncio.gather(
        *(sign_in(urls[index % len(urls)], name) for index, name in enumerate(names) if index)
    )
    clients = [sender, *others]
    keys = await enable_encryption([sender], department, demo_institution(var_dir))
    me = sender.user["id"]
    # Envelopes are made before the clock starts: this measures the server.
    envelopes = [
        (cmid, keys.envelope(me, thread, cmid)) for cmid in (uuid.uuid4().hex for _ in range(count))
    ]
    await asyncio.gather(*(client.connect() for client in clients))

    sent: dict[str, float] = {}
    arrivals: list[dict[str, list[float]]] = [{} for _ in clients]
    expected = len(clients) * count
    first_deliveries = 0
    everyone_has_all = asyncio.Event()

    async def receive(client: Connection, heard: dict[str, list[float]]) -> None:
        nonlocal first_deliveries
        while True:
            frame = await client.events.get()
            if frame.get("type") != "message.new" or frame["message"]["thread"] != thread:
                continue
            times = heard.setdefault(frame["message"]["client_msg_id"], [])
            times.append(time.perf_counter())
            if len(times) == 1:
                first_deliveries += 1
                if first_deliveries == expected:
                    everyone_has_all.set()

    acked: set[str] = set()

    async def post(client_msg_id: str, envelope: dict) -> None:
        sent[client_msg_id] = time.perf_counter()
        await sender.post(thread, envelope, client_msg_id)
        acked.add(client_msg_id)

    receivers = [
        asyncio.create_task(receive(client, heard))
        for client, heard in zip(clients, arrivals, strict=True)
    ]
    # Open loop: a slow ack must not lower the offered rate.
    posts = []
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for client_msg_id, envelope in envelopes:
        posts.append(asyncio.create_task(post(client_msg_id, envelope)))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.gather(*posts)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone_has_all.wait(), DRAIN_SECONDS)
    for task in receivers:
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    await asyncio.gather(*(client.aclose() for client in clients))
    return summarize(len(clients), {m: sent[m] for m in sent if m in acked}, arrivals)


async def run_fanout_floor(
    urls: list[str], members: int = 50, count: int = 200, rate: float = 20.0
) -> dict:
    """The floor: `members` sockets in the group, the first sending `count` frames at `rate`."""
    sockets = [await floor_clients.connect(urls[i % len(urls)]) for i in range(members)]
    probes_heard: list[set[str]] = [set() for _ in sockets]
    arrivals: list[dict[str, list[float]]] = [{} for _ in sockets]
    sent: dict[str, float] = {}
    expected = members * count
    first_deliveries = 0
    everyone_has_all = asyncio.Event()

    def on_frame(index: int) -> Callable[[dict], None]:
        def record(message: dict) -> None:
            nonlocal first_deliveries
            if message["id"].startswith("probe-"):
                probes_heard[index].add(message["id"])
                return
            times = arrivals[index].setdefault(message["id"], [])
            times.append(time.perf_counter())
            if len(times) == 1:
                first_deliveries += 1
                if first_deliveries == expected:
                    everyone_has_all.set()

        return record

    readers = [
        asyncio.create_task(floor_clients.read_frames(ws, on_frame(index)))
        for index, ws in enumerate(sockets)
    ]
    await floor_clients.until_all_hear([sockets[0]], probes_heard)
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for number in range(count):
        sent[f"m{number}"] = time.perf_counter()
        await sockets[0].send(floor_clients.frame(f"m{number}", 0))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everyone_has_all.wait(), DRAIN_SECONDS)
    for ws in sockets:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.close()
    await asyncio.gather(*readers)
    return summarize(members, sent, arrivals)
