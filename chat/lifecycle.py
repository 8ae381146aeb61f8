"""One server process's sockets: delivery that does not depend on the channel layer, and drains.

**Delivery.** Every event is in the database before anyone is told of it;
the channel layer (Redis between processes) only makes it fast. If a
publication is lost (Redis restarting, a process killed between commit and
publish), the socket would hear of the event only when a later one arrived.
So each process runs a sweeper: every `ROUNDS_DELIVERY_SWEEP_SECONDS`
(0.5 s) it reads, in one query, the last event number of every department
its sockets follow, and a socket still behind a number after two sweeps,
and sent nothing of that department in between, is caught up from the
database (`RoundsConsumer.catch_up`); one that is being sent events is late,
not lost, and is left to its publications. Ack-to-delivery is
then bounded (about a second) with or without Redis and with or without
later traffic; the channel layer is the fast path, the sweep the floor. The
same sweep closes the sockets of a login that ended (a logout, a
deactivation) whose publication was lost.

**Draining.** `drain()` (on SIGTERM, rounds/serve.py) makes `/healthz`
answer 503 so the load balancer sends no one new, refuses new sockets,
waits (at most `ROUNDS_DRAIN_SECONDS`) for the posts in flight to be
stored and acknowledged, then closes every socket with 4503 ("restarting")
so that clients reconnect at once, to another process.
"""

import asyncio
import logging
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from accounts.models import AuthSession
from core import protocol
from rooms.models import Department
from rounds import logs, metrics

if TYPE_CHECKING:
    from chat.consumers.rounds import RoundsConsumer

logger = logging.getLogger(__name__)


class Process:
    """The live sockets of this process, its sweeper, and whether it is draining."""

    def __init__(self) -> None:
        self.consumers: weakref.WeakSet[RoundsConsumer] = weakref.WeakSet()
        self.draining = False
        self.sweeper: asyncio.Task[None] | None = None
        # (consumer id, department) → (the department's head, the event number the
        # socket had been sent) at the last sweep that found it behind.
        self.suspects: dict[tuple[int, int], tuple[int, int]] = {}
        self.sweeps = 0
        self.caught_up = 0

    def register(self, consumer: "RoundsConsumer") -> None:
        self.consumers.add(consumer)
        if self.sweeper is None or self.sweeper.done():
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def unregister(self, consumer: "RoundsConsumer") -> None:
        self.consumers.discard(consumer)

    async def _sweep_forever(self) -> None:
        logs.bind()  # the process's work, not the socket's that happened to start it
        interval = settings.ROUNDS_DELIVERY_SWEEP_SECONDS
        while self.consumers:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # the database may be away: the next sweep tries again
                metrics.SWEEP_FAILURES.inc()
                logger.warning("delivery sweep failed", exc_info=True)

    async def sweep(self) -> None:
        """Catch up every socket that stayed behind a department's last event since the
        previous sweep (a publication was lost, or is very late)."""
        self.sweeps += 1
        metrics.SWEEPS.inc()
        consumers = list(self.consumers)
        departments = {d for c in consumers for d in c.delivered}
        sessions = {c.auth.session_id for c in consumers if c.auth is not None}
        heads, ended = await database_sync_to_async(read_state)(departments, sessions)
        for consumer in consumers:
            if consumer.auth is not None and consumer.auth.session_id in ended:
                # A logout or deactivation whose publication was lost: close as it would have.
                metrics.SWEEP_SIGN_OUTS.inc()
                await consumer.close(code=protocol.CLOSE_UNAUTHENTICATED)
        suspects: dict[tuple[int, int], tuple[int, int]] = {}
        late: list[tuple[RoundsConsumer, int, int]] = []
        for consumer in consumers:
            for department, delivered in list(consumer.delivered.items()):
                head = heads.get(department, 0)
                if delivered >= head:
                    continue
                key = (id(consumer), department)
                seen, then = self.suspects.get(key, (None, None))
                # Still short of the head seen a sweep ago, and sent nothing since: its
                # publications stopped (lost). A socket still being sent events is
                # only late, under load, and reading for it would add to the load.
                if seen is not None and delivered < seen and delivered == then:
                    late.append((consumer, department, seen))
                suspects[key] = (head, delivered)
        self.suspects = suspects
        metrics.SWEEP_BEHIND.set(len(suspects))
        for consumer, department, upto in late:
            self.caught_up += 1
            metrics.CATCH_UPS.inc()
            await consumer.catch_up(department, upto)
            # What this sweep sent is not progress: still nothing live by the next
            # sweep (the channel layer still away), and it is caught up again then.
            if department in consumer.delivered:
                key = (id(consumer), department)
                suspects[key] = (suspects[key][0], consumer.delivered[department])
        for consumer in consumers:
            if consumer.pending_groups:  # the channel layer refused a join: try again
                await consumer.retry_joins()

    async def drain(self, within: float | None = None) -> None:
        """Stop taking sockets, let the posts in flight be acknowledged, close the rest."""
        self.draining = True
        metrics.DRAINS.inc()
        metrics.DRAINING.set(1)
        consumers = list(self.consumers)
        in_flight = [task for consumer in consumers for task in consumer.post_tasks]
        if in_flight:
            await asyncio.wait(
                in_flight, timeout=settings.ROUNDS_DRAIN_SECONDS if within is None else within
            )
        await asyncio.gather(
            *(c.close(code=protocol.CLOSE_RESTARTING) for c in consumers),
            return_exceptions=True,
        )
        logger.info("drained: %d sockets closed, %d posts answered", len(consumers), len(in_flight))


def read_state(
    departments: Iterable[int], sessions: Iterable[int]
) -> tuple[dict[int, int], set[int]]:
    """Each department's last event number, and which of these logins ended (signed out,
    expired, or their user deactivated): two indexed queries for the whole process."""
    heads = dict(Department.objects.filter(pk__in=list(departments)).values_list("pk", "event_seq"))
    sessions = list(sessions)
    alive = set(
        AuthSession.objects.filter(
            pk__in=sessions,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
            user__is_active=True,
        ).values_list("pk", flat=True)
    )
    return heads, set(sessions) - alive


_processes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Process]" = (
    weakref.WeakKeyDictionary()
)


def this_process() -> Process:
    """The process's state, one per event loop (daphne runs one; tests start several)."""
    loop = asyncio.get_running_loop()
    process = _processes.get(loop)
    if process is None:
        process = _processes[loop] = Process()
    return process


def describe() -> dict[str, Any]:
    """For /healthz: sockets open, whether draining."""
    process = this_process()
    return {"sockets": len(process.consumers), "draining": process.draining}
