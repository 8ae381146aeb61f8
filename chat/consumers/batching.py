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

import psycopg
from django.db import close_old_connections, connection

from chat.events import collecting_publications, publish_all
from chat.posting import Post, check_post_messages
from core.errors import RoundsError
from rounds import logs, metrics
from rounds.dbpool import check_unless_quiet

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
    with a connection fit for use (`_with_usable_connection`)."""
    run = functools.partial(contextvars.copy_context().run, _with_usable_connection, func, *args)
    return await asyncio.get_running_loop().run_in_executor(_posting, run)


# A pooled connection idle this long goes back to the pool, which looks after idle ones.
KEEP_IDLE_SECONDS = 30.0
_last_batch_ended = 0.0


def _with_usable_connection(func: Callable[..., T], *args: Any) -> T:
    """Run a batch with the posting thread's connection.

    From a pool (PostgreSQL), the connection is kept from one batch to the next:
    given back and borrowed again around every batch, as Django would with the
    pool, it cost about 0.15 ms a post, and the post's prepared statements went
    with it (docs/performance.md). It is given back when an error left it
    unusable, when the server ended it while it was idle (its socket has
    something to say: the pool's own cheap check, rounds/dbpool.py), or after
    KEEP_IDLE_SECONDS without a batch. Without a pool, stale connections are
    closed before and after each batch, as Channels' thread does.
    """
    if not connection.settings_dict.get("OPTIONS", {}).get("pool"):
        close_old_connections()
        try:
            return func(*args)
        finally:
            close_old_connections()
    _give_back_if_stale()
    try:
        return func(*args)
    finally:
        _give_back_if_broken()


def _give_back_if_stale() -> None:
    if connection.connection is None:
        return
    if time.monotonic() - _last_batch_ended > KEEP_IDLE_SECONDS:
        connection.close()
        return
    try:
        check_unless_quiet(connection.connection)
    except psycopg.Error:
        connection.close()


def _give_back_if_broken() -> None:
    global _last_batch_ended
    _last_batch_ended = time.monotonic()
    if connection.connection is None:
        return
    if not connection.get_autocommit() or connection.in_atomic_block:
        connection.close()  # left inside a transaction: never carried into the next batch
    elif connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


_batchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PostBatcher]" = (
    weakref.WeakKeyDictionary()
)


def post_batcher() -> PostBatcher:
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = PostBatcher()
    return batcher
