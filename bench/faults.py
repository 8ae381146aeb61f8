"""Faults: steady posting and reading through a load balancer while the parts fail.

A deployment of its own (`run_faults`): PostgreSQL and Redis on spare ports
(bench/services.py, so they can be restarted), two `rounds.serve` processes,
HAProxy in front of them from deploy/haproxy.cfg (bench/balancer.py), and a
TCP proxy in front of HAProxy (bench/tcpproxy.py) that every client goes
through. Two senders post real envelopes (bench/keys.py) at RATE a second
each, WINDOW in flight at most; three readers take every event. Every client
reconnects after any disconnect, resumes from its cursor, and posts again
under the same client_msg_id whatever was not acknowledged
(bench/fault_clients.py).

Phases, in order, each with LEAD seconds of load before its fault, a wait
for recovery, then TAIL seconds more: `steady` (no fault: the control),
`redis_restart`, `postgres_restart` (fast stop), `daphne_sigkill` (one
process killed, then started again), `daphne_sigterm` (the other drained,
then started again), `proxy_cuts` (connections reset at random, bytes
delayed) and `quiet_ward` (no traffic; Redis stopped; one post; Redis back).

Per phase, counted over the messages first sent in it: sent, acknowledged,
lost (acknowledged but never delivered to some reader, after SETTLE
seconds), duplicated (delivered twice to a reader), the longest time from ack
to delivery to the last reader, and the same counted from when the failed
part was back (`max(ack, returned)`, the figure the 2 s bound is on);
recovery (from its return until every process's /healthz answers 200,
HAProxy has them all up and a post round-trips to every reader); and what
the clients saw: close codes, error codes, failed reconnections, timeouts.
"""

import asyncio
import contextlib
import json
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.fault_clients import Client, Ledger, Sent
from bench.keys import Keys, enable_encryption
from bench.messaging import demo_institution, prepare_thread
from bench.ports import free_port
from bench.services import Postgres, Redis, own_postgres, own_redis
from bench.stack import DEMO_PASSWORD, Stack, start_stack
from bench.tcpproxy import CuttingProxy

SENDERS = ("surgeon_bob", "nurse_alice")
READERS = ("head_carol", "intern_erin", "nurse_frank")
RATE = 15.0  # posts per second, per sender
WINDOW = 8  # posts in flight per sender
BOUND_SECONDS = 2.0  # ack (or the part's return) to delivery, every reader
TIMES = ("started", "fault_at", "returned_at")  # a phase's moments (monotonic)


FAULTS = (
    "redis_restart",
    "postgres_restart",
    "daphne_sigkill",
    "daphne_sigterm",
    "proxy_cuts",
    "quiet_ward",
)


@dataclass(frozen=True)
class Plan:
    steady: float = 10.0  # the control phase
    lead: float = 5.0  # load before each fault
    tail: float = 10.0  # load after recovery
    redis_down: float = 2.0
    postgres_down: float = 3.0
    cuts: int = 1000
    cut_interval: float = 0.03  # mean seconds between cuts
    delay: tuple[float, float] = (0.0, 0.03)  # per chunk, while cutting
    quiet_before: float = 1.0  # Redis down before the quiet ward's one post
    quiet_after: float = 3.0  # and after it, before Redis is back
    settle: float = 30.0  # after the last post: deliveries later than this are lost
    recovery_deadline: float = 60.0
    faults: tuple[str, ...] = FAULTS  # which, in this order (after `steady`)


SMOKE = Plan(steady=2.0, lead=1.0, tail=1.5, cuts=100, settle=15.0, recovery_deadline=20.0)


class Faults:
    def __init__(self, stack: Stack, postgres: Postgres, redis: Redis, plan: Plan, proxy_port: int):
        assert stack.balancer is not None
        self.stack = stack
        self.balancer = stack.balancer
        self.postgres = postgres
        self.redis = redis
        self.plan = plan
        self.proxy = CuttingProxy(self.balancer.port, port=proxy_port)
        self.ledger = Ledger(list(READERS))
        self.load = asyncio.Event()
        self.in_flight: set[asyncio.Task] = set()
        self.senders: list[Client] = []
        self.readers: list[Client] = []
        self.sending: list[asyncio.Task] = []
        self.keys: Keys | None = None
        self.thread = 0
        self.phases: list[dict] = []

    # --- the load ----------------------------------------------------------------

    async def setup(self) -> None:
        await self.proxy.start()
        self.senders = [Client(self.proxy.url, name, self.ledger) for name in SENDERS]
        self.readers = [Client(self.proxy.url, name, self.ledger) for name in READERS]
        for client in (*self.senders, *self.readers):
            await client.start(DEMO_PASSWORD)
        department, self.thread = await prepare_thread(self.senders[0].conn)
        self.keys = await enable_encryption(
            [c.conn for c in (*self.senders, *self.readers)],
            department,
            demo_institution(self.stack.var_dir),
        )
        for client in self.readers:
            client.tasks.append(asyncio.create_task(client.read(self.thread, record=True)))
        for client in self.senders:
            client.tasks.append(asyncio.create_task(client.read(self.thread, record=False)))
            self.sending.append(asyncio.create_task(self.send_steadily(client)))

    def envelope(self, client: Client, record: Sent) -> dict:
        assert self.keys is not None and client.conn.user is not None
        return self.keys.envelope(client.conn.user["id"], self.thread, record.client_msg_id)

    async def post(self, client: Client) -> Sent:
        """One post from `client`, retried until acknowledged; its record."""
        record = self.ledger.new(uuid.uuid4().hex, client.name)
        await client.post_until_acked(self.thread, self.envelope(client, record), record)
        return record

    async def send_steadily(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(WINDOW)
        interval = 1 / RATE
        next_at = loop.time()
        while True:
            if not self.load.is_set():
                await self.load.wait()
                next_at = loop.time()
            await gate.acquire()
            task = asyncio.create_task(self.post(client))
            task.add_done_callback(lambda _: gate.release())
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            # A window that was full does not make up for lost time in a burst.
            next_at = max(next_at + interval, loop.time() - interval)
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def quiesce(self, deadline: float) -> None:
        """Until every post made is acknowledged and delivered everywhere (or `deadline`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(deadline):
                while self.in_flight:
                    await asyncio.wait(set(self.in_flight))
                await asyncio.gather(
                    *(self.ledger.everywhere(r.client_msg_id) for r in self.ledger.unsettled())
                )

    # --- recovery ------------------------------------------------------------------

    async def healthy_everywhere(self, http: httpx.AsyncClient) -> bool:
        async def status(url: str) -> int:
            try:
                return (await http.get(url + "/healthz")).status_code
            except httpx.HTTPError:
                return 0

        statuses = await asyncio.gather(*(status(url) for url in self.stack.urls))
        if any(code != 200 for code in statuses):
            return False
        with contextlib.suppress(OSError):
            return self.balancer.all_up()
        return False

    async def recover(self, since: float) -> dict:
        """Seconds from `since` until every process is healthy and HAProxy has them all in
        rotation (`healthy_s`), and until a post then made reached every reader
        (`recovery_s`); None past the deadline."""
        end = since + self.plan.recovery_deadline
        async with httpx.AsyncClient(timeout=2) as http:
            while not await self.healthy_everywhere(http):
                if time.monotonic() > end:
                    return {"healthy_s": None, "recovery_s": None}
                await asyncio.sleep(0.05)
        healthy = time.monotonic() - since
        try:
            async with asyncio.timeout(max(0.1, end - time.monotonic())):
                record = await self.post(self.senders[0])
                await self.ledger.everywhere(record.client_msg_id)
        except TimeoutError:
            return {"healthy_s": healthy, "recovery_s": None}
        return {"healthy_s": healthy, "recovery_s": time.monotonic() - since}

    async def sockets_on(self, index: int) -> int | None:
        async with httpx.AsyncClient(timeout=5) as http:  # /healthz may wait 2 s for Redis
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                answer = await http.get(self.stack.urls[index] + "/healthz")
                return answer.json()["process"]["sockets"]
        return None

    # --- the faults ----------------------------------------------------------------

    async def redis_restart(self) -> dict:
        await asyncio.to_thread(self.redis.stop)
        down = time.monotonic()
        await asyncio.sleep(self.plan.redis_down)
        await asyncio.to_thread(self.redis.start)
        return {"returned_at": time.monotonic(), "down_s": time.monotonic() - down}

    async def postgres_restart(self) -> dict:
        await asyncio.to_thread(self.postgres.stop, "fast")
        down = time.monotonic()
        await asyncio.sleep(self.plan.postgres_down)
        await asyncio.to_thread(self.postgres.start)
        return {"returned_at": time.monotonic(), "down_s": time.monotonic() - down}

    async def daphne_sigkill(self, index: int = 0) -> dict:
        sockets = await self.sockets_on(index)
        await asyncio.to_thread(self.stack.stop, index, signal.SIGKILL)
        down = time.monotonic()
        await asyncio.to_thread(self.stack.restart, index)
        return {
            "returned_at": time.monotonic(),
            "down_s": time.monotonic() - down,
            "sockets_on_process": sockets,
        }

    async def daphne_sigterm(self, index: int = 1) -> dict:
        sockets = await self.sockets_on(index)
        started = time.monotonic()
        exit_code = await asyncio.to_thread(self.stack.stop, index, signal.SIGTERM)
        drained = time.monotonic()
        await asyncio.to_thread(self.stack.restart, index)
        return {
            "returned_at": time.monotonic(),
            "down_s": time.monotonic() - drained,
            "sockets_on_process": sockets,
            "drain_s": drained - started,
            "exit_code": exit_code,
        }

    async def proxy_cuts(self) -> dict:
        self.proxy.delay = self.plan.delay
        started = time.monotonic()
        made = await self.proxy.cut_randomly(self.plan.cuts, self.plan.cut_interval)
        self.proxy.delay = (0.0, 0.0)
        return {
            "returned_at": time.monotonic(),
            "down_s": time.monotonic() - started,
            "cuts": made,
            "delay_ms": [round(d * 1000) for d in self.plan.delay],
        }

    async def quiet_ward(self) -> dict:
        """No traffic, Redis stopped, one post, Redis back: the post must reach every
        reader, through the sweep, at the latest BOUND_SECONDS after Redis returns."""
        self.load.clear()
        await self.quiesce(self.plan.settle)
        await asyncio.to_thread(self.redis.stop)
        down = time.monotonic()
        await asyncio.sleep(self.plan.quiet_before)
        posted = time.monotonic()
        record = await self.post(self.senders[0])
        await asyncio.sleep(max(0.0, posted + self.plan.quiet_after - time.monotonic()))
        await asyncio.to_thread(self.redis.start)
        returned = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.plan.recovery_deadline):
                await self.ledger.everywhere(record.client_msg_id)
        assert record.acked is not None
        firsts = {
            reader: times[0]
            if (times := self.ledger.deliveries[reader].get(record.client_msg_id))
            else None
            for reader in READERS
        }
        return {
            "returned_at": returned,
            "down_s": returned - down,
            "quiet_post": {
                "ack_s": round(record.acked - posted, 3),
                "delivered_after_ack_s": {
                    r: None if t is None else round(t - record.acked, 3) for r, t in firsts.items()
                },
                "delivered_after_redis_back_s": {
                    r: None if t is None else round(t - returned, 3) for r, t in firsts.items()
                },
            },
        }

    # --- the run -------------------------------------------------------------------

    async def phase(self, name: str, fault: Callable[[], Awaitable[dict]] | None) -> dict:
        self.ledger.phase = name
        started = time.monotonic()
        self.load.set()
        if fault is None:
            await asyncio.sleep(self.plan.steady)
            return {"fault": name, "started": started, "returned_at": started}
        await asyncio.sleep(self.plan.lead)
        fault_at = time.monotonic()
        details = await fault()
        recovery = await self.recover(details["returned_at"])
        self.load.set()
        await asyncio.sleep(self.plan.tail)
        return {"fault": name, "started": started, "fault_at": fault_at, **recovery, **details}

    async def run(self) -> list[dict]:
        # `kill -USR1` on a run that seems stuck prints where each task waits.
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, print_tasks)
        await self.setup()
        phases = [await self.phase("steady", None)]
        for name in self.plan.faults:
            phases.append(await self.phase(name, getattr(self, name)))
        self.ledger.phase = "end"
        self.load.clear()
        for task in self.sending:
            task.cancel()  # no new posts; those in flight go on until acknowledged
        await self.quiesce(self.plan.settle)
        for client in (*self.senders, *self.readers):
            await client.stop()
        await self.proxy.close()
        self.phases = phases
        return [summarize(self.ledger, phase) for phase in phases]

    def evidence(self) -> dict:
        """The ledger (every message, delivery and thing seen) and the phases' times."""
        dump = self.ledger.dump()
        origin = min((r.created for r in self.ledger.sent.values()), default=0.0)
        dump["phases"] = [
            {
                k: round(v - origin, 4) if k in TIMES and v is not None else v
                for k, v in phase.items()
            }
            for phase in self.phases
        ]
        return dump


def print_tasks() -> None:
    for task in asyncio.all_tasks():
        task.print_stack(limit=6, file=sys.stderr)
    sys.stderr.flush()


def summarize(ledger: Ledger, phase: dict) -> dict:
    """One phase's figures, over the messages first sent in it."""
    name, returned = phase["fault"], phase["returned_at"]
    records = [r for r in ledger.sent.values() if r.phase == name]
    acked = [r for r in records if r.acked is not None]
    lost = duplicated = 0
    ack_to_delivery: list[float] = []
    after_return: list[float] = []
    slowest: dict[str, float] = {}
    for record in acked:
        missing = False
        for reader in ledger.readers:
            times = ledger.deliveries[reader].get(record.client_msg_id)
            if not times:
                missing = True
                continue
            duplicated += len(times) > 1
            delay = max(0.0, times[0] - record.acked)
            ack_to_delivery.append(delay)
            after_return.append(max(0.0, times[0] - max(record.acked, returned)))
            slowest[reader] = max(slowest.get(reader, 0.0), delay)
        lost += missing
    seen = ledger.seen[name]
    ordered = sorted(ack_to_delivery)
    extra = {
        k: (round(v, 3) if isinstance(v, float) else v)
        for k, v in phase.items()
        if k not in ("fault", "recovery_s", "healthy_s", *TIMES)
    }
    waits = [r.acked - r.created for r in acked]
    return {
        "fault": name,
        "sent": len(records),
        "acknowledged": len(acked),
        "lost": lost,
        "duplicated": duplicated,
        "unacknowledged_delivered": sum(
            1
            for r in records
            if r.acked is None and any(r.client_msg_id in d for d in ledger.deliveries.values())
        ),
        "max_ack_to_delivery_s": round(max(ordered), 3) if ordered else None,
        "p99_ack_to_delivery_s": round(ordered[int(0.99 * (len(ordered) - 1))], 3)
        if ordered
        else None,
        "max_after_return_s": round(max(after_return), 3) if after_return else None,
        "slowest_per_reader_s": {r: round(v, 3) for r, v in sorted(slowest.items())},
        "healthy_s": _rounded(phase.get("healthy_s", 0.0)),
        "recovery_s": _rounded(phase.get("recovery_s", 0.0)),
        "post_timeouts": seen["post timeout"],
        "max_post_wait_s": round(max(waits), 3) if waits else None,
        "max_attempts": max((r.attempts for r in records), default=0),
        "stored_unanswered": sum(r.stored_unanswered for r in records),
        "closes": {
            k.removeprefix("close "): v for k, v in sorted(seen.items()) if k.startswith("close ")
        },
        "errors": {
            k.removeprefix("post "): v for k, v in sorted(seen.items()) if k.startswith("post ")
        },
        "reconnects": seen["reconnected"],
        "reconnect_failures": {
            k.removeprefix("reconnect failed: "): v
            for k, v in sorted(seen.items())
            if k.startswith("reconnect failed: ")
        },
        **extra,
    }


def problems(phases: list[dict]) -> list[str]:
    """What issue 12 refuses, phase by phase: a post lost, duplicated, never acknowledged
    or left to a client timeout; a delivery later than BOUND_SECONDS after the ack or the
    part's return (the quiet ward's one post included); no recovery; an unclean drain."""
    found = []
    for phase in phases:
        name = phase["fault"]
        for key, what in (
            ("lost", "lost"),
            ("duplicated", "delivered twice"),
            ("post_timeouts", "left to the client's timeout"),
        ):
            if phase[key]:
                found.append(f"{name}: {phase[key]} posts {what}")
        if phase["acknowledged"] < phase["sent"]:
            found.append(f"{name}: {phase['sent'] - phase['acknowledged']} never acknowledged")
        if phase["recovery_s"] is None:
            found.append(f"{name}: no recovery (healthy after {phase['healthy_s']} s)")
        late = phase["max_after_return_s"]
        if late is not None and late > BOUND_SECONDS:
            found.append(f"{name}: delivered {late} s after the ack or the return")
        quiet = phase.get("quiet_post")
        if quiet:
            for reader, after in quiet["delivered_after_redis_back_s"].items():
                if after is None or after > BOUND_SECONDS:
                    found.append(f"{name}: the quiet post reached {reader} at {after} s")
        if phase.get("exit_code", 0) != 0:
            found.append(f"{name}: the drained process exited with {phase['exit_code']}")
    return found


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_faults(
    plan: Plan = Plan(), log_dir: Path | None = None, extra_env: dict[str, str] | None = None
) -> tuple[str, list[dict]]:
    """The whole scenario on a deployment of its own: (its description, one dict per phase).

    `log_dir` keeps the servers' output (daphne, HAProxy, Redis, PostgreSQL).
    """
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    proxy_port = free_port()
    with (
        own_postgres() as postgres,
        own_redis(log_dir / "redis.log" if log_dir else None) as redis,
        start_stack(
            2,
            True,
            {"ROUNDS_LOG_LEVEL": "WARNING", **(extra_env or {})},
            database=postgres.url,
            redis=redis.url,
            origins=[f"http://127.0.0.1:{proxy_port}"],
            log_dir=log_dir,
        ) as stack,
    ):
        scenario = Faults(stack, postgres, redis, plan, proxy_port)
        try:
            phases = asyncio.run(scenario.run())
        finally:
            if log_dir is not None:
                with contextlib.suppress(OSError):
                    shutil.copy(postgres.root / "log", log_dir / "postgres.log")
                (log_dir / "ledger.json").write_text(json.dumps(scenario.evidence()))
    description = (
        f"2 rounds.serve behind HAProxy and a cutting proxy, own PostgreSQL + Redis; "
        f"{len(SENDERS)} senders at {RATE:g}/s, {len(READERS)} readers; plan {asdict(plan)}"
    )
    return description, phases
