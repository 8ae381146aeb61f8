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
