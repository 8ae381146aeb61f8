"""The escalation scenario runs: two daphne processes (on PostgreSQL + Redis in CI, with
--services' layer when REDIS_URL is set; SQLite otherwise), each with its scheduler.

Checks that every first timer fired once, on one process or the other, and that each
escalation's push notice reached the local receiver decrypted; never timings.
"""

import os

import pytest

from bench.escalation import ENV, run_escalation
from bench.stack import start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


def test_each_timer_fires_once_across_two_processes_and_its_notice_arrives() -> None:
    services = bool(os.environ.get("DATABASE_URL", "").startswith("postgres"))
    with start_stack(
        processes=2,
        services=services,
        extra_env={**ENV, "ROUNDS_LIGHT_PASSWORD_HASH": "1"},
    ) as stack:
        result = run_escalation(stack, count=40, spread=2.0, lead=3.0)
    assert result["requests"] == result["fired"] == 40
    assert result["twice"] == 0
    assert sum(result["by_process"]) == 40
    assert result["pushes"] == 40
