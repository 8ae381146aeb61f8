"""The connections and history scenarios run: one daphne, in-memory layer, tiny counts.

Checks that every socket opened and answers, and that every page and every
resume came back whole, never timings: a slow machine must not fail the suite.
"""

from collections.abc import Iterator

import pytest

from bench.connections import BENCH_USERS, CONNECTION_LIMITS, run_connections
from bench.history import run_history
from bench.messaging import BENCH_LIMITS
from bench.seed_members import seed_members
from bench.stack import Stack, start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(90)]

CONNECTIONS_KEYS = {
    "sockets",
    "opened",
    "still_open",
    "users",
    "seconds_to_open",
    "rss_before_mb",
    "rss_after_mb",
    "kib_per_socket",
    "pings_answered",
    "failures",
    "server_delivered",
    "server_mean_s",
    "server_all_within_s",
    "broadcast_received",
    "broadcast_failures",
    "broadcast_p50_s",
    "broadcast_s",
    "rss_after_broadcast_mb",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # The light Argon2 of the test suite: fifty bench sign-ins in well under a second.
    limits = {**BENCH_LIMITS, **CONNECTION_LIMITS, "ROUNDS_LIGHT_PASSWORD_HASH": "1"}
    with start_stack(processes=1, services=False, extra_env=limits) as running:
        seed_members(running.env, BENCH_USERS)
        yield running
    assert all(process.poll() is not None for process in running.processes)


async def test_every_socket_opens_stays_open_and_answers(stack: Stack) -> None:
    result = await run_connections(stack.urls, [p.pid for p in stack.processes], sockets=50)

    assert set(result) == CONNECTIONS_KEYS
    assert result["opened"] == result["still_open"] == 50
    assert result["failures"] == {}
    assert result["pings_answered"] == 50
    assert result["rss_before_mb"] > 0
    assert result["seconds_to_open"] > 0
    # One event for all: every socket has it, and the server counted each delivery.
    assert result["broadcast_received"] == result["server_delivered"] == 50
    assert result["broadcast_failures"] == 0
    assert 0 < result["broadcast_p50_s"] <= result["broadcast_s"]


def test_history_pages_and_resumes_come_back_whole(stack: Stack) -> None:
    result = run_history(stack, rows=2000, samples=20)

    assert result["rows"] == 2000
    assert result["database"] == "SQLite"
    assert result["pages"] == result["pages_full"] == 40
    assert result["resumes"] == result["resumes_complete"] == 20
    assert 1 <= result["resume_events_mean"] <= 500
    assert result["database_mb"] > 0
    for measure in ("history_ws", "history_http", "resume"):
        assert 0 < result[f"{measure}_p50_ms"] <= result[f"{measure}_p99_ms"]
