"""bench/hops.py measures both ways into a database thread (docs/performance.md)."""

import pytest

from bench import hops

pytestmark = pytest.mark.django_db(transaction=True)


async def test_both_hops_are_measured():
    figures = await hops.measure(calls=20)
    assert set(figures) == {"database_sync_to_async", "posting thread"}
    for p50, p99 in figures.values():
        assert 0 < p50 <= p99
