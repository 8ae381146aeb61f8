"""Posts are stored in a database thread of their own (chat/consumers/batching.py), so
the process's other database work (history pages, receipts, the sweep) does not queue
behind a batch of posts, nor posts behind it."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async

from chat.consumers import batching
from chat.posting import Post
from core.errors import ErrorCode, RoundsError

# The posting thread closes stale connections around each batch, as Channels' does.
pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_slow_batch_of_posts_does_not_hold_up_other_database_work(monkeypatch):
    entered, release = threading.Event(), threading.Event()
    stored_in: list[str] = []

    def slow_store(posts):
        stored_in.append(threading.current_thread().name)
        entered.set()
        release.wait(10)
        return [RoundsError("Thread not found.", code=ErrorCode.NOT_FOUND) for _ in posts]

    monkeypatch.setattr(batching, "check_post_messages", slow_store)
    loop = asyncio.get_running_loop()
    post = Post(actor=None, thread_id=1, client_msg_id="slow", envelope={})  # type: ignore[arg-type]
    outcome = batching.PostBatcher().enqueue(post)
    assert await loop.run_in_executor(None, entered.wait, 5)
    try:
        # While the batch is being stored, another database call of the process answers.
        other = await asyncio.wait_for(
            database_sync_to_async(lambda: threading.current_thread().name)(), 5
        )
    finally:
        release.set()
    refusal = await asyncio.wait_for(outcome, 5)
    assert isinstance(refusal, RoundsError) and refusal.code == ErrorCode.NOT_FOUND
    assert stored_in[0].startswith("rounds-posts") and not other.startswith("rounds-posts")


async def test_posts_waiting_together_are_one_batch_and_the_metrics_say_so(monkeypatch):
    """rounds_post_batch_size / _seconds (docs/operations.md): the posts queued while the
    posting thread is busy go in one batch, and one observation each says so."""
    from prometheus_client import REGISTRY

    batches: list[int] = []

    def store(posts):
        batches.append(len(posts))
        return [RoundsError("Thread not found.", code=ErrorCode.NOT_FOUND) for _ in posts]

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    monkeypatch.setattr(batching, "check_post_messages", store)
    before = {
        name: sample(name)
        for name in (
            "rounds_post_batch_size_count",
            "rounds_post_batch_size_sum",
            "rounds_post_batch_seconds_count",
        )
    }
    batcher = batching.PostBatcher()
    posts = [
        Post(actor=None, thread_id=1, client_msg_id=f"p{i}", envelope={})  # type: ignore[arg-type]
        for i in range(3)
    ]
    # Queued in one go, before the drain task first runs: one batch of three.
    outcomes = await asyncio.gather(*(batcher.enqueue(post) for post in posts))
    assert all(isinstance(outcome, RoundsError) for outcome in outcomes)
    assert batches == [3]
    assert sample("rounds_post_batch_size_count") - before["rounds_post_batch_size_count"] == 1
    assert sample("rounds_post_batch_size_sum") - before["rounds_post_batch_size_sum"] == 3
    assert (
        sample("rounds_post_batch_seconds_count") - before["rounds_post_batch_seconds_count"] == 1
    )
