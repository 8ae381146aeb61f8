"""Group commit for posts: the posts of one process that arrive together share a transaction.

Posts are stored in a database thread of their own, one per process (the
rest of the process's database work runs in Channels' `database_sync_to_async`
thread), so posts queue behind each other, not behind history pages and
receipts. Rather than one transaction each, the posts waiting when the posting
thread comes free are stored together (`chat.posting.check_post_messages`):
one transaction and a few statements for the batch. Nothing waits to fill a
batch: a lone post goes at once, so latency at low rates is unchanged, and
under load batches grow with the queue. The batch's events are published
from the event loop after commit, so the posting thread goes straight on
to the next batch.
"""

import asyncio
import contextvars
import functools
import logging
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import close_old_connections

from chat.events import collecting_publications, publish_all
from chat.posting import Post, check_post_messages
from core.errors import RoundsError
from rounds import logs, metrics

# What a queued post comes to: its ack, or its refusal (given, not raised).
Outcome = dict[str, Any] | RoundsError

logger = logging.getLogger(__name__)

# Bounds one transaction's size, and so how long it holds its locks.
MAX_BATCH = 64


class PostBatcher:
    """One per event loop: queues posts and stores them in batches, in arrival order."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Post, asyncio.Future[Outcome]]] = []
        self.draining: asyncio.Task[None] | None = None

    def enqueue(self, post: Post) -> "asyncio.Future[Outcome]":
        """Queue a post; the future gives its ack or its refusal (a RoundsError, not raised).

        Synchronous, so the posts of one socket are queued, and so numbered,
        in the order they came.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self.waiting.append((post, future))
        if self.draining is None:
            self.draining = loop.create_task(self._drain())
        return future

    async def submit(self, post: Post) -> dict[str, Any]:
        """Store a post with whatever else is waiting; its ack, or raise its refusal."""
        outcome = await self.enqueue(post)
        if isinstance(outcome, RoundsError):
            raise outcome
        return outcome

    async def _drain(self) -> None:
        logs.bind()  # the process's work, not the socket's whose post started it
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
                metrics.POST_BATCH_SIZE.observe(len(batch))
                started = time.perf_counter()
                try:
                    outcomes, publications = await in_posting_thread(
                        collecting_publications, check_post_messages, [post for post, _ in batch]
                    )
                except Exception as error:  # each post's handler answers internal_error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                finally:
                    metrics.POST_BATCH_SECONDS.observe(time.perf_counter() - started)
                metrics.PUBLICATIONS_PENDING.inc(len(publications))
                try:
                    # Fan-out first: the members hear of the posts as soon as the acks go.
                    await publish_all(publications)
                except Exception:
                    # Stored is acknowledged: the sockets that missed the publication are
                    # caught up from the database by their process's sweep (chat/lifecycle.py).
                    metrics.PUBLISH_FAILED.inc()
                    logger.warning("publishing %d events failed", len(publications), exc_info=True)
                finally:
                    metrics.PUBLICATIONS_PENDING.dec(len(publications))
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self.draining = None


T = TypeVar("T")

# The posts' own database thread (its connection borrowed from the pool per batch, as
# Channels' thread borrows its own). A hop through a plain
# executor costs about half of one through asgiref's SyncToAsync (docs/performance.md).
_posting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rounds-posts")


async def in_posting_thread(func: Callable[..., T], *args: Any) -> T:
    """Run `func(*args)` in the posting thread, in this task's context (its log fields),
    closing stale connections before and after, as `database_sync_to_async` does."""
    run = functools.partial(contextvars.copy_context().run, _with_fresh_connection, func, *args)
    return await asyncio.get_running_loop().run_in_executor(_posting, run)


def _with_fresh_connection(func: Callable[..., T], *args: Any) -> T:
    close_old_connections()
    try:
        return func(*args)
    finally:
        close_old_connections()


_batchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PostBatcher]" = (
    weakref.WeakKeyDictionary()
)


def post_batcher() -> PostBatcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = PostBatcher()
    return batcher
