"""GET /healthz: is the database reachable, does the channel layer carry a message, is
this process taking new sockets (503 while it drains, so the load balancer moves on)."""

import asyncio
import time
import uuid
import weakref

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse

from chat.lifecycle import describe


def _check_database() -> dict:
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
    """One channel per process for the layer check, created once: a new channel per
    probe stayed subscribed in Redis after its answer (one more every call)."""

    def __init__(self) -> None:
        self.channel: str | None = None
        self.lock = asyncio.Lock()


_probes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Probe]" = (
    weakref.WeakKeyDictionary()
)


async def _check_channel_layer() -> dict:
    layer = get_channel_layer()
    loop = asyncio.get_running_loop()
    probe = _probes.get(loop) or _probes.setdefault(loop, _Probe())
    started = time.perf_counter()
    async with probe.lock:
        if probe.channel is None:
            # The consumers' own prefix: channels-redis lets one receiver at a time pop a
            # process's messages, keyed by the part before "!", so a channel of another
            # prefix waits behind an open socket's 5 s poll and the check times out.
            probe.channel = await layer.new_channel(prefix="specific")
        nonce = uuid.uuid4().hex
        await layer.send(probe.channel, {"type": "healthz.ping", "nonce": nonce})
        async with asyncio.timeout(2):
            # A late answer to an earlier probe that timed out may come first.
            while (await layer.receive(probe.channel)).get("nonce") != nonce:
                pass
    return {
        "ok": True,
        "backend": type(layer).__name__,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }


async def healthz(request):
    checks = {}
    for name, check in (
        ("database", database_sync_to_async(_check_database)),
        ("channel_layer", _check_channel_layer),
    ):
        try:
            checks[name] = await check()
        except Exception as exc:  # a health check reports, it does not raise
            checks[name] = {"ok": False, "error": type(exc).__name__}
    process = describe()
    ok = all(c["ok"] for c in checks.values()) and not process["draining"]
    status = "draining" if process["draining"] else "ok" if ok else "degraded"
    return JsonResponse({"status": status, **checks, "process": process}, status=200 if ok else 503)
