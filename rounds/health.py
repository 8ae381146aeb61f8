"""GET /healthz: is the database reachable, does the channel layer carry a message."""

import asyncio
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse


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


async def _check_channel_layer() -> dict:
    layer = get_channel_layer()
    started = time.perf_counter()
    # The consumers' own prefix: channels-redis lets one receiver at a time pop a
    # process's messages, keyed by the part before "!", so a channel of another prefix
    # waits behind an open socket's 5 s poll and the check times out.
    channel = await layer.new_channel(prefix="specific")
    await layer.send(channel, {"type": "healthz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    return {
        "ok": message.get("type") == "healthz.ping",
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
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "degraded", **checks}, status=200 if ok else 503)
