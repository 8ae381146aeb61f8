"""The media scenario runs: one daphne, SQLite, a 1 MiB blob, a small library.

Checks that blobs go up and come back whole and that the bulk-filled library
answers every filter with what it holds, never timings: a slow machine must
not fail the suite.
"""

from collections.abc import Iterator

import pytest

from bench.media import run_media
from bench.messaging import BENCH_LIMITS
from bench.stack import Stack, start_stack

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with start_stack(
        processes=1, services=False, extra_env={**BENCH_LIMITS, "ROUNDS_LIGHT_PASSWORD_HASH": "1"}
    ) as running:
        yield running


def test_blobs_go_through_and_the_library_answers_every_filter(stack: Stack) -> None:
    result = run_media(
        stack, sizes=(1 << 20,), repeats=1, memory_sizes=(1 << 20,), attachments=400, samples=3
    )

    # run_media itself asserts each download's size equals the upload's.
    assert result["upload_1mib_mb_s"] > 0
    assert result["download_1mib_mb_s"] > 0
    assert result["disk_copy_1mib_mb_s"] > 0
    assert result["rss_before_1mib_mb"] > 0
    assert result["library_attachments"] == 400
    assert result["library_department_items"] == 50  # a full first page
    for name in ("patient", "keyword", "sender", "consent", "date_range"):
        assert result[f"library_{name}_items"] > 0, name
    assert result["library_two_keywords_items"] <= result["library_keyword_items"]
