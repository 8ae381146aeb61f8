"""The purge scenario runs: one daphne, in-memory layer, a small expired thread.

Checks that the purge removed every message of that thread (and only that
thread) while the member's posts kept being acked; never timings.
"""

import pytest

from bench.messaging import BENCH_LIMITS
from bench.purge import run_purge
from bench.stack import start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def test_the_purge_scenario_purges_the_expired_thread_under_load() -> None:
    with start_stack(
        processes=1, extra_env={**BENCH_LIMITS, "ROUNDS_LIGHT_PASSWORD_HASH": "1"}
    ) as stack:
        result = run_purge(stack, rows=1000, before_seconds=1.0)
    assert result["threads"] == 1
    assert result["messages"] == result["events"] == 1000
    assert result["during_posts"] >= 1
    assert result["before_post_p50_ms"] is not None
