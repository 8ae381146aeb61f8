"""Settings for the floor: Channels and its layer, nothing else.

The layer is chosen exactly as rounds/settings.py chooses it (same classes,
same options, same variables), so the floor and Rounds differ only in what
Rounds does per message.
"""

import os

SECRET_KEY = "floor-not-secret"  # signs nothing: no sessions, no auth
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
DATABASES: dict = {}
USE_TZ = True
ASGI_APPLICATION = "bench.floor.asgi.application"

REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    _layer = os.environ.get("ROUNDS_CHANNEL_LAYER", "pubsub")
    # Unique per run (bench/stack.py sets it), so runs never share groups.
    _prefix = os.environ.get("FLOOR_CHANNEL_PREFIX", "floor")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": _prefix},
        }
        if _layer == "pubsub"
        else {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": _prefix, "capacity": 1000, "expiry": 60},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
