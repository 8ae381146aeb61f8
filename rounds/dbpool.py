"""The PostgreSQL connection pool: back within a quarter of a second of the database, and
a connection lent without a round trip when nothing says it is dead."""

import select
from typing import Any

import psycopg
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from psycopg import Connection
from psycopg_pool import ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

RECONNECT_PAUSE_SECONDS = 0.25


def reconnect_at_a_steady_pace() -> None:
    """psycopg_pool tries a lost connection again after 1 s and doubles the pause at
    every failure (2, 4, 8 s…), so after an outage of D seconds the pool may wait up to
    D seconds more: the faults scenario saw posts wait 6.5 s for a 3 s PostgreSQL
    restart. The same pause follows each dead connection the pool's check finds
    before lending one (after a restart, every idle one): a second each, in the one
    thread where Channels runs a process's database calls. A short pause that does
    not grow brings the pool back within RECONNECT_PAUSE_SECONDS of the database,
    for four connection attempts a second per lost connection meanwhile (refused at
    once while PostgreSQL is down).

    The pool takes no such option (Django builds it), so its attempts' class is set.
    """
    AttemptWithBackoff.INITIAL_DELAY = RECONNECT_PAUSE_SECONDS
    AttemptWithBackoff.DELAY_BACKOFF = 1.0


def check_unless_quiet(conn: Connection[Any]) -> None:
    """The pool's check before lending a connection, without a round trip when none is
    needed: a pooled connection is idle, so nothing arrives on its socket unless the
    server ended it (a restart or a terminated backend sends its error, then closes)
    or the network reset it. A quiet socket is lent as it is; anything else gets the
    full check, which fails on a dead connection so that the pool lends another.

    The full check (an empty query) cost about 65 µs a checkout here, once per database
    call, on the post path among others (docs/performance.md)."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the pooled connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


def _check_quietly(sender: object, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    pool = getattr(connection, "pool", None)
    if pool is not None and getattr(pool, "_check", None) is ConnectionPool.check_connection:
        pool._check = check_unless_quiet


def lend_quiet_connections_unchecked() -> None:
    """Django builds the pool with psycopg_pool's full check when CONN_HEALTH_CHECKS is
    on and takes no other; the pool's check is replaced once, at its first connection."""
    connection_created.connect(_check_quietly, dispatch_uid="rounds-quiet-pool-check")
