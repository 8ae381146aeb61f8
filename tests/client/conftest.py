"""The live tests' machinery (tests/live/servers.py), with one daphne process.

tests/live's own `cluster` fixture starts two processes when REDIS_URL is
set; the key handling needs no cross-process delivery, so one is enough.
"""

from collections.abc import Iterator

import pytest

from tests.live.servers import LiveCluster, live_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    with live_cluster(1) as running:
        yield running
