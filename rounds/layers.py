"""The channel layer, chosen from the environment: shared by Rounds' settings and the
benchmark floor's (bench/floor/settings.py), so both run on the very same layer."""

import asyncio
import copy
import os
import time
from typing import Any

from channels.layers import InMemoryChannelLayer


class InMemoryLayer(InMemoryChannelLayer):
    """Channels' in-memory layer, its sweep of expired messages run at most once a
    `sweep_interval` instead of on every receive and group send, and a group send
    that queues the message for each member in turn.

    The sweep visits every channel of the process, so a broadcast to N sockets cost
    N² steps (about 9 s for 5,000 idle sockets on this machine's CPU). Expiry still
    holds: a message is dropped at most `sweep_interval` later than its 60 s expiry.
    Channels' group send made a task per member (and a deep copy each), which for
    5,000 sockets took most of a second before the first was told.
    """

    sweep_interval = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()  # type: ignore[misc]  # the base class is untyped there

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Queue `message` on every channel of the group, as `send` would, without a task
        each. The message is deep-copied once; each channel gets its own top-level dict
        over the copy (Rounds' group messages hold strings and numbers only)."""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        copied = copy.deepcopy(message)
        expires = time.time() + self.expiry
        for channel in list(self.groups.get(group, {})):
            queue = self.channels.setdefault(
                channel, asyncio.Queue(maxsize=self.get_capacity(channel))
            )
            try:
                queue.put_nowait((expires, dict(copied)))
            except asyncio.QueueFull:
                continue  # as Channels' own: a full channel misses it (ChannelFull)


def channel_layers(prefix_variable: str, default_prefix: str) -> dict[str, Any]:
    """CHANNEL_LAYERS: Redis when REDIS_URL is set, else in memory (one process).

    With Redis, ROUNDS_CHANNEL_LAYER picks "pubsub" (the default: relays
    through Redis pub/sub, no per-message keys, lowest latency) or "core"
    (each message in a Redis list until read). Either may drop a message for
    a socket that is gone: resume recovers it from the database, which is
    the only store Rounds relies on. The group prefix comes from
    `prefix_variable`, so deployments (and test or benchmark runs) sharing
    one Redis never share groups.
    """
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        return {
            "default": {
                "BACKEND": "rounds.layers.InMemoryLayer",
                "CONFIG": {"capacity": 1000},
            }
        }
    prefix = os.environ.get(prefix_variable, default_prefix)
    if os.environ.get("ROUNDS_CHANNEL_LAYER", "pubsub") == "pubsub":
        return {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [redis_url], "prefix": prefix},
            }
        }
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": prefix, "capacity": 1000, "expiry": 60},
        }
    }
