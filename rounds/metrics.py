"""What the operator sees: every Prometheus metric of a Rounds process, defined here once.

Each daphne process keeps its own numbers and serves them on its own
`/metrics` (rounds/metrics_view.py): a scraper scrapes every process, never
the load balancer, and sums (or takes the max of) what is process-wide.
Instrumented code makes one call per event (a counter, a gauge, one
observation): no database query and no lock beyond the client's own, so
the hot path pays one or two microseconds per call. What only the database
or the pool can tell (audit entries waiting to be sealed, the connections
in use) is read when scraped, by the collectors at the end of this file.

Labels take values from closed sets only (frame types, error codes, close
codes, outcomes): a client can never make a new series appear.
"""

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# How long a scrape waits for its database query (the audit backlog).
SCRAPE_QUERY_SECONDS = 2.0
# Seconds: from a millisecond to the 2 s of the delivery alert and beyond.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

# --- Posts and frames (chat/consumers/rounds.py) ----------------------------------------
POSTS_RECEIVED = Counter(
    "rounds_posts_received", "message.post frames read and queued for storage."
)
POSTS_ANSWERED = Counter(
    "rounds_posts_answered",
    "message.post frames answered, by outcome: stored (acked, new), duplicate (acked, a "
    "retry of a stored post), refused (a typed error, see rounds_frame_errors_total), "
    "internal_error (storing failed; the client retries).",
    ["outcome"],
)
ACK_LATENCY = Histogram(
    "rounds_ack_latency_seconds",
    "From reading a frame to sending its ack or error, by frame type (for message.post, "
    "storage in a group commit and publication included).",
    ["type"],
    buckets=LATENCY_BUCKETS,
)
POST_BATCH_SIZE = Histogram(
    "rounds_post_batch_size",
    "Posts stored together in one batch of the posting thread (group commit: its text "
    "posts share a transaction, a post with photos has its own): 1 while posts come one "
    "at a time, more as they queue behind a batch being stored.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
POST_BATCH_SECONDS = Histogram(
    "rounds_post_batch_seconds",
    "One batch of posts, from the event loop handing it to the posting thread to its "
    "outcomes back: signature checks, the transaction and its commit. Its sum's rate is "
    "how busy the posting thread is (1 = always).",
    buckets=LATENCY_BUCKETS,
)
FRAME_ERRORS = Counter(
    "rounds_frame_errors",
    "Error frames sent to sockets, by error code (refusals, rate limits, internal errors).",
    ["code"],
)
DELIVERY = Histogram(
    "rounds_delivery_seconds",
    "Ack-to-delivery: from an event's commit to its frame sent to a socket, once per "
    "receiving socket. path=live: published through the channel layer, measured from the "
    "commit; path=sweep: caught up from the database by the sweep after a lost "
    "publication, measured from the message's created_at.",
    ["path"],
    buckets=LATENCY_BUCKETS,
)

# --- Sockets ----------------------------------------------------------------------------
SOCKETS_OPEN = Gauge("rounds_sockets_open", "Signed-in sockets open on this process.")
SOCKETS_OPENED = Counter(
    "rounds_sockets_opened", "WebSocket handshakes accepted (refused ones are then closed)."
)
SOCKETS_CLOSED = Counter(
    "rounds_sockets_closed",
    "Sockets ended, by close code and by who closed first (server: Rounds chose the code; "
    "client: the client's code, 1006 for a connection dropped without a close).",
    ["code", "by"],
)
KNOWN_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006, 1011, 1012, 4401, 4409, 4429, 4500, 4503})

# --- Channel layer and delivery sweep (chat/events.py, chat/lifecycle.py) ---------------
LAYER_ERRORS = Counter(
    "rounds_channel_layer_errors",
    "Channel layer operations that failed, by operation: publish (events stored but not "
    "published: the sweep delivers them), join and leave (group membership of a socket), "
    "receive (the Redis pub/sub reader lost its connection; it reconnects by itself).",
    ["operation"],
)
DELIVERY_FAILED = Counter(
    "rounds_delivery_failures",
    "Live events a socket could not be sent (the database away while reading a gap): "
    "the delivery sweep sends them once the database answers.",
)
REJOINS = Counter(
    "rounds_channel_layer_rejoins",
    "Groups joined again by a socket after a failed join, once the channel layer was back.",
)
PUBLICATIONS_PENDING = Gauge(
    "rounds_publications_pending",
    "Events committed by this process and not yet handed to the channel layer.",
)
SWEEPS = Counter("rounds_sweeps", "Delivery sweeps run (every ROUNDS_DELIVERY_SWEEP_SECONDS).")
SWEEP_FAILURES = Counter("rounds_sweep_failures", "Delivery sweeps that failed (database away).")
CATCH_UPS = Counter(
    "rounds_sweep_catch_ups",
    "Socket catch-ups the sweep had to make: a publication lost (or later than two sweeps).",
)
SWEEP_SIGN_OUTS = Counter(
    "rounds_sweep_sign_outs",
    "Sockets the sweep closed because their login ended and the sign-out was not heard.",
)
SWEEP_BEHIND = Gauge(
    "rounds_sweep_behind",
    "At the last sweep: (socket, department) pairs behind the department's last event.",
)
DRAINS = Counter("rounds_drains", "Drains started (SIGTERM).")
DRAINING = Gauge("rounds_draining", "1 while this process drains: no new sockets, /healthz 503.")

# --- Health, audit ----------------------------------------------------------------------
HEALTHZ = Counter(
    "rounds_healthz", "GET /healthz answers, by status (ok, degraded, draining).", ["status"]
)
HEALTH_CHECK_UP = Gauge(
    "rounds_health_check_up",
    "Result of the last /healthz check on this process, by check: 1 passed, 0 failed.",
    ["check"],
)
AUDIT_SEAL_FAILURES = Counter(
    "rounds_audit_seal_failures", "Rounds of the audit sealer thread that failed."
)
ADVICE_TIMERS = Counter(
    "rounds_advice_timers_fired",
    "Advice request timers fired by this process's scheduler, by step (escalated, realerted).",
    ["step"],
)
ADVICE_TIMER_LATENESS = Histogram(
    "rounds_advice_timer_lateness_seconds",
    "From an advice timer's due time to its firing (the step's server timestamp).",
    buckets=LATENCY_BUCKETS,
)
ADVICE_SCHEDULER_FAILURES = Counter(
    "rounds_advice_scheduler_failures", "Rounds of the advice scheduler that failed."
)
AUDIT_QUARANTINED = Counter(
    "rounds_audit_quarantined",
    "Audit entries the sealer could not encode, sealed as a quarantine marker instead.",
)
AUDIT_CHECKPOINTS = Counter(
    "rounds_audit_checkpoints",
    "Signed checkpoints of the audit chain head written, by outcome.",
    ["outcome"],
)

# --- Push notifications (push/sender.py, docs/push.md) ----------------------------------
PUSH_SENT = Counter(
    "rounds_push_sent",
    "Pushes handed to push services, by outcome: delivered (2xx), gone (404 or 410: the "
    "subscription is marked gone, never used again), failed (any other answer, or none).",
    ["outcome"],
)
PUSH_SKIPPED = Counter(
    "rounds_push_skipped",
    "Pushes not sent, by reason: quiet (routine, to a user in quiet mode off duty), "
    "coalesced (a message push to the same user and thread within the window), dropped "
    "(the sender's queue was full), failed_job (resolving recipients failed).",
    ["reason"],
)
PUSH_QUEUE = Gauge("rounds_push_queue", "Jobs waiting for this process's push sender.")

# Children bound once: the hot path skips the label lookup.
_STORED, _DUPLICATE = POSTS_ANSWERED.labels("stored"), POSTS_ANSWERED.labels("duplicate")
_REFUSED, _INTERNAL = POSTS_ANSWERED.labels("refused"), POSTS_ANSWERED.labels("internal_error")
_POST_LATENCY = ACK_LATENCY.labels("message.post")
_LIVE, _SWEPT = DELIVERY.labels("live"), DELIVERY.labels("sweep")
PUBLISH_FAILED = LAYER_ERRORS.labels("publish")
JOIN_FAILED = LAYER_ERRORS.labels("join")
LEAVE_FAILED = LAYER_ERRORS.labels("leave")
_OUTCOMES = {"stored": _STORED, "duplicate": _DUPLICATE, "refused": _REFUSED}


def post_answered(outcome: str, read_at: float) -> None:
    """A post's ack or error went out; `read_at` is `time.perf_counter()` at its frame's read."""
    _OUTCOMES.get(outcome, _INTERNAL).inc()
    _POST_LATENCY.observe(time.perf_counter() - read_at)


def frame_answered(kind: str, read_at: float) -> None:
    ACK_LATENCY.labels(kind).observe(time.perf_counter() - read_at)


def delivered(committed_at: float | None) -> None:
    """A live event's frame went to a socket; `committed_at` is `time.time()` at commit."""
    if committed_at is not None:
        _LIVE.observe(max(0.0, time.time() - committed_at))


def swept(frame: dict[str, Any]) -> None:
    """A message.new the sweep sent from the database: late by now - its created_at."""
    if frame.get("type") == "message.new" and frame.get("message"):
        created = datetime.fromisoformat(frame["message"]["created_at"]).timestamp()
        _SWEPT.observe(max(0.0, time.time() - created))


def socket_closed(code: int | None, by: str) -> None:
    label = str(code) if code in KNOWN_CLOSE_CODES else "other"
    SOCKETS_CLOSED.labels(label, by).inc()


def healthz(status: str, checks: dict[str, dict[str, Any]]) -> None:
    HEALTHZ.labels(status).inc()
    for name, result in checks.items():
        HEALTH_CHECK_UP.labels(name).set(1 if result.get("ok") else 0)


class ChannelLayerLogCounter(logging.Handler):
    """Counts the errors channels-redis only logs (its pub/sub reader losing Redis).

    Attached to the `channels_redis` logger in settings.LOGGING; the records
    still reach the console. channels-redis 4.3 offers no reconnect hook (its
    on_reconnect is stored, never called), so its log is the one signal.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            # The other error it logs: unsubscribing a closed socket's channel failed.
            receiving = "receive task" in str(record.msg)
            LAYER_ERRORS.labels("receive" if receiving else "leave").inc()


# --- Read at scrape time ------------------------------------------------------------------
class ScrapeTimeCollector(Collector):
    """Read only when scraped: `describe` is empty so that registering at import (before
    Django's apps are ready) does not run the query."""

    def describe(self) -> Iterator[Metric]:
        return iter(())


class AuditBacklog(ScrapeTimeCollector):
    """Audit entries waiting to be sealed: one indexed query, counted up to a cap.

    The view `refresh`es it before each scrape, in a thread of its own and
    within SCRAPE_QUERY_SECONDS: not in the database thread, where it would
    queue behind the posts, and never long enough for a database that does
    not answer to make the whole scrape time out. Without an answer, the
    scrape goes without these two series.
    """

    def __init__(self) -> None:
        self.latest: tuple[int, datetime | None] | None = None

    async def refresh(self) -> None:
        self.latest = None
        try:
            self.latest = await asyncio.wait_for(
                sync_to_async(_read_backlog, thread_sensitive=False)(), SCRAPE_QUERY_SECONDS
            )
        except Exception:  # the database is away or slow: this scrape goes without
            logger.warning("reading the audit backlog for /metrics failed", exc_info=True)

    def collect(self) -> Iterator[Metric]:
        if self.latest is None:
            return
        count, oldest = self.latest
        yield GaugeMetricFamily(
            "rounds_audit_unsealed_entries",
            "Committed audit entries not yet sealed into the hash chain (whole database, "
            "the same on every process; counted up to 100000).",
            value=count,
        )
        yield GaugeMetricFamily(
            "rounds_audit_unsealed_oldest_seconds",
            "Age of the oldest audit entry waiting to be sealed (0 when none waits).",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp()),
        )


def _read_backlog() -> tuple[int, datetime | None]:
    from django.db import connection

    from audit.actions import unsealed_backlog

    try:
        return unsealed_backlog()
    finally:
        connection.close()  # this thread's own connection (back to the pool, if any)


class DatabasePool(ScrapeTimeCollector):
    """This process's PostgreSQL connection pool (psycopg-pool's get_stats()), when on."""

    GAUGES = {
        "pool_max": ("rounds_db_pool_max", "Connections the pool may open (max_size)."),
        "pool_size": ("rounds_db_pool_size", "Connections open, in use or idle."),
        "pool_available": ("rounds_db_pool_available", "Idle connections ready to lend."),
        "requests_waiting": (
            "rounds_db_pool_requests_waiting",
            "Threads waiting for a connection right now.",
        ),
    }
    COUNTERS = {
        "requests_num": ("rounds_db_pool_requests", "Connections asked of the pool."),
        "requests_queued": ("rounds_db_pool_requests_queued", "Requests that had to wait."),
        "requests_errors": (
            "rounds_db_pool_request_errors",
            "Requests that got no connection (timed out after 10 s, or failed).",
        ),
        "connections_lost": (
            "rounds_db_pool_connections_lost",
            "Pooled connections found dead when checked (after a PostgreSQL restart).",
        ),
    }

    def collect(self) -> Iterator[Metric]:
        from django.db import connections

        pool = getattr(connections["default"], "pool", None)
        if pool is None:
            return
        stats = pool.get_stats()
        for key, (name, text) in self.GAUGES.items():
            yield GaugeMetricFamily(name, text, value=stats.get(key, 0))
        for key, (name, text) in self.COUNTERS.items():
            yield CounterMetricFamily(name, text, value=stats.get(key, 0))


AUDIT_BACKLOG = AuditBacklog()
REGISTRY.register(AUDIT_BACKLOG)
REGISTRY.register(DatabasePool())
