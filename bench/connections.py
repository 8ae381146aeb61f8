"""How many idle sockets one daphne process holds, and what each costs in memory.

Opens `sockets` authenticated WebSockets to one process, a window of them at
a time, reads the process's RSS from /proc before and after, and checks at
the end that the sockets are still open and that a sample of them answers a
protocol `ping`. The sockets are idle: apart from `hello` and the keep-alive
pings of daphne and the client library, nothing is sent on them.

Then one event for all of them: a member opens a thread in their department,
and the time from that request to the moment the last socket holds the
`thread.created` frame is the broadcast's (`broadcast_s`, the slowest
socket's; `broadcast_p50_s` the middle one's).

The deployment must have been started with `CONNECTION_LIMITS` in its
environment and seeded with `seed_members(stack.env, BENCH_USERS)`
(bench/seed_members.py): BENCH_USERS clinicians share the sockets, as a few
users with many devices would, because every sign-in costs a full Argon2
hash and the per-user cap (20 per process by default) is what is lifted.
"""

import asyncio
import collections
import json
import random
import time

import httpx
import websockets
from websockets.protocol import State

from bench.seed_members import member_username
from bench.stack import DEMO_PASSWORD, raise_open_files_limit
from client.transport import Connection

BENCH_USERS = 50
CONNECTION_LIMITS = {"ROUNDS_WS_MAX_CONNECTIONS_PER_USER": "100000"}
# Handshakes in flight at once: enough to keep daphne busy, few enough that none
# waits past daphne's handshake timeout (5 s) behind the others.
OPEN_WINDOW = 200
PING_SAMPLE = 50
# Let the server's allocator settle after the last handshake before reading RSS.
SETTLE_SECONDS = 2.0


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc (no dependency)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def sign_in_bench_users(url: str, count: int) -> list[str]:
    """Bearer tokens of the bench clinicians; a few sign-ins at a time (Argon2 is heavy)."""
    gate = asyncio.Semaphore(4)

    async def token(index: int) -> str:
        async with gate:
            client = Connection(url, timeout=60)
            try:
                await client.login(member_username(index + 1), DEMO_PASSWORD)
            finally:
                await client.http.aclose()
            return client.token

    return await asyncio.gather(*(token(index) for index in range(count)))


async def open_idle_socket(url: str, token: str) -> websockets.ClientConnection:
    """A socket signed in with `token`, once its `hello` arrived; raises otherwise."""
    connection = await websockets.connect(
        url.replace("http", "ws", 1) + "/ws/",
        origin=url,
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=60,
        max_size=2**22,
    )
    try:
        first = json.loads(await asyncio.wait_for(connection.recv(), 60))
    except BaseException:
        await connection.close()
        raise
    if first.get("type") != "hello":
        await connection.close()
        raise RuntimeError(f"first frame {first.get('type')} {first.get('code')}")
    return connection


async def answers_ping(connection: websockets.ClientConnection, frame_id: str) -> bool:
    """Send a protocol `ping` and wait for its ack, skipping anything pushed meanwhile."""
    await connection.send(json.dumps({"type": "ping", "id": frame_id}))
    while True:
        frame = json.loads(await asyncio.wait_for(connection.recv(), 30))
        if frame.get("id") == frame_id:
            return frame.get("type") == "ack" and "server_time" in frame["result"]


def failure_reason(error: BaseException) -> str:
    if isinstance(error, websockets.ConnectionClosed) and error.rcvd is not None:
        return f"closed {error.rcvd.code}"
    if isinstance(error, websockets.InvalidStatus):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


async def run_connections(urls: list[str], pids: list[int], sockets: int = 5000) -> dict:
    """Open `sockets` idle sockets to urls[0] and weigh them in the RSS of pids[0]."""
    raise_open_files_limit()
    url, pid = urls[0], pids[0]
    users = min(BENCH_USERS, sockets)
    tokens = await sign_in_bench_users(url, users)
    rss_before = rss_kib(pid)
    gate = asyncio.Semaphore(OPEN_WINDOW)
    opened: list[websockets.ClientConnection] = []
    failures: collections.Counter[str] = collections.Counter()

    async def open_one(index: int) -> None:
        async with gate:
            try:
                opened.append(await open_idle_socket(url, tokens[index % users]))
            except Exception as error:
                failures[failure_reason(error)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(open_one(index) for index in range(sockets)))
    seconds_to_open = time.perf_counter() - started
    await asyncio.sleep(SETTLE_SECONDS)
    rss_after = rss_kib(pid)
    sample = random.sample(opened, min(PING_SAMPLE, len(opened)))
    answered = await asyncio.gather(
        *(answers_ping(connection, f"p{i}") for i, connection in enumerate(sample)),
        return_exceptions=True,
    )
    broadcast = await time_broadcast(url, opened)
    rss_after_broadcast = rss_kib(pid)
    still_open = sum(1 for connection in opened if connection.state is State.OPEN)
    await close_all(opened)
    return {
        "sockets": sockets,
        "opened": len(opened),
        "still_open": still_open,
        "users": users,
        "seconds_to_open": round(seconds_to_open, 2),
        "rss_before_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1),
        "kib_per_socket": round((rss_after - rss_before) / max(1, len(opened)), 1),
        "pings_answered": sum(1 for result in answered if result is True),
        **broadcast,
        "rss_after_broadcast_mb": round(rss_after_broadcast / 1024, 1),
        "failures": dict(failures),
    }


async def time_broadcast(url: str, sockets: list[websockets.ClientConnection]) -> dict:
    """One event to every socket: head_carol opens a thread in Plastic surgery, whose
    members hold the sockets; seconds until each socket has its `thread.created`."""
    head = Connection(url, timeout=60)
    await head.login("head_carol", DEMO_PASSWORD)
    department = (await head.departments())[0]["id"]
    patient = (await head.find_patients(name="le"))[0]["id"]
    title = f"Broadcast {random.randrange(1 << 30)}"
    arrived: list[float] = []
    ready = asyncio.Event()
    waiting = len(sockets)

    async def wait_for_it(connection: websockets.ClientConnection) -> None:
        nonlocal waiting
        waiting -= 1
        if waiting == 0:
            ready.set()
        while True:
            frame = json.loads(await asyncio.wait_for(connection.recv(), 60))
            if frame.get("type") == "thread.created" and frame["thread"]["title"] == title:
                arrived.append(time.perf_counter())
                return

    readers = [asyncio.ensure_future(wait_for_it(connection)) for connection in sockets]
    await ready.wait()
    before = await live_deliveries(url)
    started = time.perf_counter()
    await head.create_thread(department, patient, title)
    results = await asyncio.gather(*readers, return_exceptions=True)
    after = await live_deliveries(url)
    await head.aclose()
    delays = sorted(at - started for at in arrived)
    return {
        **server_side(before, after),
        "broadcast_received": len(arrived),
        "broadcast_failures": sum(1 for result in results if isinstance(result, BaseException)),
        "broadcast_p50_s": round(delays[len(delays) // 2], 3) if delays else None,
        "broadcast_s": round(delays[-1], 3) if delays else None,
    }


async def live_deliveries(url: str) -> dict[str, float]:
    """The process's ack-to-delivery histogram for live events (rounds/metrics.py), from
    its /metrics (open to loopback): cumulative counts by bucket, and the sum."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(url + "/metrics", timeout=30)).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("rounds_delivery_seconds") and 'path="live"' in line:
            name, value = line.rsplit(" ", 1)
            bound = name.split('le="', 1)[1].split('"', 1)[0] if 'le="' in name else name
            found[bound if "_bucket" in name else name.split("{", 1)[0]] = float(value)
    return found


def server_side(before: dict[str, float], after: dict[str, float]) -> dict:
    """Commit → frame handed to the socket, on the server, for the broadcast's frames:
    the mean, and the histogram bucket the slowest one fell in."""
    count = after.get("rounds_delivery_seconds_count", 0) - before.get(
        "rounds_delivery_seconds_count", 0
    )
    total = after.get("rounds_delivery_seconds_sum", 0) - before.get(
        "rounds_delivery_seconds_sum", 0
    )
    bounds = sorted((float(b), b) for b in after if b[0].isdigit() or b == "+Inf")
    within = next(
        (number for number, bound in bounds if after[bound] - before.get(bound, 0) >= count),
        None,
    )
    return {
        "server_delivered": int(count),
        "server_mean_s": round(total / count, 3) if count else None,
        "server_all_within_s": within,
    }


async def close_all(connections: list[websockets.ClientConnection]) -> None:
    gate = asyncio.Semaphore(OPEN_WINDOW)

    async def close(connection: websockets.ClientConnection) -> None:
        async with gate:
            await connection.close()

    await asyncio.gather(*(close(connection) for connection in connections))
