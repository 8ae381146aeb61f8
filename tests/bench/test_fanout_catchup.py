"""Fan-out and catch-up run end to end: one daphne, SQLite, in-memory layer, tiny counts.

Checks shape and delivery (nothing lost, nothing twice, nothing out of
order), never timings: a slow machine must not fail the suite. Each Rounds
scenario gets a fresh stack, because each publishes its senders' identities
(a server takes only one per user) and builds the department's chain and
key version from nothing (bench/keys.py).
"""

from collections.abc import Iterator

import pytest

from bench import catchup, fanout, messaging
from bench.seed_members import seed_members
from bench.stack import Stack, start_floor, start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(60)]

# What bench/__main__.py will print and store, for Rounds and the floor alike.
FANOUT_KEYS = {
    "members",
    "messages",
    "all_p50_ms",
    "all_p95_ms",
    "all_p99_ms",
    "each_p50_ms",
    "lost",
    "duplicates",
}
CATCHUP_KEYS = {
    "messages",
    "post_seconds",
    "catchup_seconds",
    "msgs_per_s_catchup",
    "lost",
    "duplicates",
    "out_of_order",
}


@pytest.fixture
def rounds() -> Iterator[Stack]:
    with start_stack(1, False, messaging.BENCH_LIMITS) as running:
        yield running


def assert_fanout_complete(result: dict, members: int, messages: int) -> None:
    assert set(result) == FANOUT_KEYS
    assert result["members"] == members
    assert result["messages"] == messages
    assert result["lost"] == 0
    assert result["duplicates"] == 0
    assert 0 < result["each_p50_ms"] <= result["all_p50_ms"]
    assert result["all_p50_ms"] <= result["all_p95_ms"] <= result["all_p99_ms"]


async def test_fanout_reaches_every_member_once(rounds: Stack) -> None:
    result = await fanout.run_fanout(
        rounds.urls, members=5, count=10, rate=50.0, var_dir=rounds.var_dir, env=rounds.env
    )

    assert_fanout_complete(result, members=5, messages=10)


def test_seeding_members_admits_them_once(rounds: Stack) -> None:
    first = seed_members(rounds.env, 2)
    again = seed_members(rounds.env, 2)

    assert (first["created"], first["admitted"]) == (2, 2)
    assert (again["created"], again["admitted"]) == (0, 0)


async def test_catchup_replays_every_missed_message_once_in_order(rounds: Stack) -> None:
    result = await catchup.run_catchup(rounds.urls, messages=100, window=8, var_dir=rounds.var_dir)

    assert set(result) == CATCHUP_KEYS
    assert result["messages"] == 100
    assert (result["lost"], result["duplicates"], result["out_of_order"]) == (0, 0, 0)
    assert result["catchup_seconds"] > 0
    assert result["msgs_per_s_catchup"] > 0


async def test_floor_fanout_reaches_every_socket_once() -> None:
    with start_floor(1, False) as floor:
        result = await fanout.run_fanout_floor(floor.urls, members=5, count=10, rate=50.0)

    assert_fanout_complete(result, members=5, messages=10)


def test_catchup_counts_disorder_apart_from_repeats_and_gaps() -> None:
    frames = [
        {"type": "message.new", "department": 1, "event_seq": seq, "message": {"seq": seq - 10}}
        for seq in (11, 13, 12, 13)
    ]

    seqs, out_of_order = catchup.check_order(frames, department=1)

    assert seqs == [1, 3, 2, 3]
    assert out_of_order == 1
