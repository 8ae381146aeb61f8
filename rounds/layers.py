"""The channel layer, chosen from the environment: shared by Rounds' settings and the
benchmark floor's (bench/floor/settings.py), so both run on the very same layer."""

import os
from typing import Any


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
                "BACKEND": "channels.layers.InMemoryChannelLayer",
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
