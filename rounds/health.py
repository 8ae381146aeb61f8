"""GET /healthz: is the database reachable, does the channel layer carry a message, is
this process taking new sockets.

503 when this process cannot serve (the database is unreachable) or drains
(SIGTERM), so the load balancer moves on; 200 with status "degraded" when
only the channel layer is away (delivery then runs through each process's
sweep, a second slower).

Anyone gets the status; the checks and the process (database vendor, channel
layer, sockets) only the operators, as /metrics: from loopback, or with
`Authorization: Bearer $ROUNDS_METRICS_TOKEN`. They tell an attacker what runs.
"""

import asyncio
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import HttpRequest, JsonResponse

from chat.lifecycle import describe
from rounds import metrics
from rounds.metrics_view import from_loopback, has_token


def _check_database() -> dict[str, Any]:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {
        "ok": True,
        "vendor": connection.vendor,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }


class _Probe:
    """One channel per process for the layer check, and one task reading it.

    A new channel per probe stayed subscribed in Redis after its answer (one
    more every call). And the check must never cancel a `receive`: the pub/sub
    layer takes a cancelled receive for a consumer leaving, and unsubscribes the
    channel; after a Redis restart the first probe times out, and every later
    one would time out with it. So a task of its own receives, and each probe
    waits for its nonce's answer, which it may stop waiting for.
    """

    def __init__(self) -> None:
        self.channel: str | None = None
        self.lock = asyncio.Lock()
        self.answers: dict[str, asyncio.Future[None]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def ready(self, layer: BaseChannelLayer) -> str:
        async with self.lock:
            if self.channel is None:
                # The consumers' own prefix: channels-redis lets one receiver at a time
                # pop a process's messages, keyed by the part before "!", so a channel of
                # another prefix waits behind an open socket's 5 s poll and times out.
                # Both layers Rounds runs on (in-memory, Redis pub/sub) take a prefix.
                self.channel = await layer.new_channel(prefix="specific")  # type: ignore[call-arg]  # the stubs' base class takes none
                self.reader = asyncio.create_task(self._read(layer, self.channel))
            return self.channel

    async def _read(self, layer: BaseChannelLayer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except Exception:  # the core layer raises while Redis is away
                await asyncio.sleep(0.5)
                continue
            answer = self.answers.pop(str(message.get("nonce")), None)
            if answer is not None and not answer.done():
                answer.set_result(None)

    async def round_trip(self, layer: BaseChannelLayer, within: float) -> None:
        channel = await self.ready(layer)
        nonce = uuid.uuid4().hex
        answer = self.answers[nonce] = asyncio.get_running_loop().create_future()
        try:
            await layer.send(channel, {"type": "healthz.ping", "nonce": nonce})
            await asyncio.wait_for(answer, within)
        finally:
            self.answers.pop(nonce, None)


_probes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Probe]" = (
    weakref.WeakKeyDictionary()
)
# Each check gives up after this. /healthz itself may take longer while PostgreSQL is
# away: Django runs its request signals in the same one thread as every database
# call, where a call may wait the pool's timeout (3 s) for a connection; the load
# balancer's check (deploy/haproxy.cfg: 3 s) then times out, which takes the process
# out of rotation as a 503 would.
CHECK_SECONDS = 1.0


async def _check_channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("CHANNEL_LAYERS has no default layer.")
    loop = asyncio.get_running_loop()
    probe = _probes.get(loop) or _probes.setdefault(loop, _Probe())
    started = time.perf_counter()
    await asyncio.wait_for(probe.round_trip(layer, CHECK_SECONDS), CHECK_SECONDS)
    return {
        "ok": True,
        "backend": type(layer).__name__,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }


async def _check_database_in_time() -> dict[str, Any]:
    """The database check, given up after CHECK_SECONDS: Channels runs every database
    call of a process in one thread, so while PostgreSQL is away the check waits
    behind calls waiting for a connection (the pool's timeout), and a process whose
    database work is that far behind is not serving either."""
    return await asyncio.wait_for(database_sync_to_async(_check_database)(), CHECK_SECONDS)


async def _report(check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return await check()
    except Exception as exc:  # a health check reports, it does not raise
        return {"ok": False, "error": type(exc).__name__}


async def healthz(request: HttpRequest) -> JsonResponse:
    database, channel_layer = await asyncio.gather(
        _report(_check_database_in_time), _report(_check_channel_layer)
    )
    checks = {"database": database, "channel_layer": channel_layer}
    process = describe()
    # Serving needs the database. Without the channel layer a process still serves
    # (its sweep delivers events from the database, chat/lifecycle.py): it reports it
    # ("degraded") but stays in the load balancer's rotation, or a Redis restart would
    # take every process out at once, the HTTP API with them.
    ok = checks["database"]["ok"] and not process["draining"]
    degraded = not all(c["ok"] for c in checks.values())
    status = "draining" if process["draining"] else "degraded" if degraded or not ok else "ok"
    metrics.healthz(status, checks)
    body: dict[str, Any] = {"status": status}
    if from_loopback(request) or has_token(request):
        body.update(checks, process=process)
    return JsonResponse(body, status=200 if ok else 503)
