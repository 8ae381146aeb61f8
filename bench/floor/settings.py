"""Settings for the floor: Channels and its layer, nothing else.

The layer is chosen by the same function as Rounds' (rounds/layers.py: same
classes, same options, same variables), so the floor and Rounds differ only in what
Rounds does per message.
"""

from rounds.layers import channel_layers

SECRET_KEY = "floor-not-secret"  # signs nothing: no sessions, no auth
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["channels"]
DATABASES: dict = {}
USE_TZ = True
ASGI_APPLICATION = "bench.floor.asgi.application"

# Unique per run (bench/stack.py sets it), so runs never share groups.
CHANNEL_LAYERS = channel_layers("FLOOR_CHANNEL_PREFIX", "floor")
