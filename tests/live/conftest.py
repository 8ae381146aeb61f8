"""The live tests' fixtures live in tests/live/servers.py."""

from tests.live.servers import cluster  # noqa: F401
