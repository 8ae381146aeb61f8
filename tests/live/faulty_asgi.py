"""Rounds' ASGI application with faults injected, for the live tests of failure handling.

A real daphne serves it (tests/live/test_faults.py), so what a client sees
is what daphne and autobahn actually send:

- a `message.post` whose client_msg_id starts with `boom` fails inside the
  server while it is stored (as when the database restarts mid-batch);
- a `ping` whose id starts with `boom` fails inside its handler.

Nothing here is reachable from rounds.asgi: production code has no fault switch.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
django.setup()  # before the app modules: their models need the app registry

from chat import posting  # noqa: E402
from chat.consumers import batching  # noqa: E402
from chat.consumers.rounds import RoundsConsumer  # noqa: E402
from rounds.asgi import application  # noqa: E402

_store = posting.check_post_messages
_ping = RoundsConsumer.on_ping


def _failing_store(posts):
    if any(post.client_msg_id.startswith("boom") for post in posts):
        raise RuntimeError("injected: the database went away")
    return _store(posts)


async def _failing_ping(self, frame):
    if frame.id.startswith("boom"):
        raise RuntimeError("injected: a handler failed")
    return await _ping(self, frame)


batching.check_post_messages = _failing_store
RoundsConsumer.on_ping = _failing_ping

__all__ = ["application"]
