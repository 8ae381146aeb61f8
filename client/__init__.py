"""Rounds' Python SDK: the same protocol the browser speaks, for scripts, tests and benchmarks."""

from client.sdk import RoundsClient, RoundsClientError

__all__ = ["RoundsClient", "RoundsClientError"]
