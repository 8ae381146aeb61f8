"""The compliance scenario runs: one daphne, in-memory layer, a small case.

Checks that the real `rounds compliance export` wrote every thread and
photo of the case, that `rounds verify-export` accepted the bundle, and
that each command's peak memory was read from its own process; never
timings.
"""

import pytest

from bench.compliance import UPLOAD_LIMITS, run_compliance
from bench.messaging import BENCH_LIMITS
from bench.stack import start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]


def test_the_compliance_scenario_exports_the_case_and_the_bundle_verifies() -> None:
    with start_stack(
        processes=1, extra_env={**BENCH_LIMITS, **UPLOAD_LIMITS, "ROUNDS_LIGHT_PASSWORD_HASH": "1"}
    ) as stack:
        result = run_compliance(stack, messages=120, photos=6, threads=2)
    assert result["problems"] == []
    assert result["verified"] is True
    assert result["threads"] == result["exported_threads"] == 2
    assert result["photo_files"] == 6
    # case.json, audit.json, manifest.json and .sig; per thread a timeline, released, PDF.
    assert result["bundle_files"] == 4 + 2 * 3 + 6
    assert result["receipts"] > 0
    # Each figure is the command's own process: listing cases holds no case in memory.
    assert 0 < result["cli_baseline_rss_mb"] < result["export_peak_rss_mb"]
    assert result["verify_peak_rss_mb"] > 0
