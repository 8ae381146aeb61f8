"""The live tests' fixtures live in tests/live/servers.py and tests/live/keys.py."""

from tests.live.keys import live_keys  # noqa: F401
from tests.live.servers import cluster  # noqa: F401
