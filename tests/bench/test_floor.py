"""The floor (bench/floor/) runs and measures: one daphne, in-memory layer, tiny counts.

Checks shape and delivery (nothing lost, nothing twice), never timings: a
slow machine must not fail the suite.
"""

from collections.abc import Iterator

import httpx
import pytest

from bench.floor import clients
from bench.stack import Stack, start_floor

pytestmark = [pytest.mark.live, pytest.mark.timeout(60)]

# The keys bench/messaging.py returns, so bench/__main__.py can set them side by side.
LATENCY_KEYS = {"messages", "offered_rate", "p50_ms", "p95_ms", "p99_ms"}
THROUGHPUT_KEYS = {
    "messages",
    "senders",
    "window",
    "seconds",
    "msg_per_s",
    "lost",
    "duplicates",
    "cores",
}


@pytest.fixture(scope="module")
def floor() -> Iterator[Stack]:
    with start_floor(processes=1, services=False) as running:
        yield running
    assert all(process.poll() is not None for process in running.processes)


def test_health_answers_only_its_path(floor: Stack) -> None:
    assert httpx.get(floor.urls[0] + "/healthz").status_code == 200
    assert httpx.get(floor.urls[0] + "/elsewhere").status_code == 404


async def test_latency_is_measured_on_every_message(floor: Stack) -> None:
    result = await clients.run_latency(floor.urls, count=20, rate=100.0)

    assert set(result) == LATENCY_KEYS
    assert result["messages"] == 20
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]


async def test_throughput_loses_and_duplicates_nothing(floor: Stack) -> None:
    result = await clients.run_throughput(floor.urls, total=200, window=16)

    assert set(result) == THROUGHPUT_KEYS
    assert result["messages"] == 200
    assert result["senders"] == 4
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert result["msg_per_s"] > 0


def test_frames_are_the_size_of_rounds_posts() -> None:
    assert len(clients.frame("s3-1999", 3)) == clients.FRAME_BYTES
