"""The ADT scenario runs: one daphne, SQLite, the listener in its own process, a few
patients' stays over MLLP and a small merge.

Checks that every message was acknowledged AA and that the merge moved the thread and
its photos to the surviving record; never timings.
"""

import pytest

from bench.adt import run_adt
from bench.messaging import BENCH_LIMITS
from bench.stack import start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


def test_the_adt_scenario_acknowledges_every_message_and_merges() -> None:
    with start_stack(
        processes=1, extra_env={**BENCH_LIMITS, "ROUNDS_LIGHT_PASSWORD_HASH": "1"}
    ) as stack:
        result = run_adt(stack, messages=40, connections=2, merge_messages=30, merge_photos=10)
    assert result["problems"] == []
    assert result["errors"] == 0
    assert result["messages"] == 40
    assert result["merge_photos"] == 10
    assert result["one_connection_msg_per_s"] > 0
    assert result["2_connections_p99_ms"] >= result["2_connections_p50_ms"]
    assert isinstance(result["goal_500_met"], bool)
