"""The floor's ASGI application: every WebSocket path is the broadcast, GET /healthz is 200.

The health answer lets bench/stack.py wait for the floor as it waits for Rounds.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floor.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from bench.floor.consumer import BroadcastConsumer  # noqa: E402


async def healthz(scope, receive, send) -> None:
    """200 on GET /healthz, 404 elsewhere: no Django view, no middleware."""
    found = scope["method"] == "GET" and scope["path"] == "/healthz"
    body = b"ok" if found else b"not found"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


application = ProtocolTypeRouter({"http": healthz, "websocket": BroadcastConsumer.as_asgi()})
