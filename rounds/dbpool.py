"""The PostgreSQL connection pool: back within a quarter of a second of the database."""

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
