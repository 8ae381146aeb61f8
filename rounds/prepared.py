"""The post path's statements, parsed and planned once per connection (PostgreSQL).

Django binds parameters on the client: every statement reaches PostgreSQL as
text, to be parsed and planned again. For a post's three statements, planning
took longer than running them (0.25 against 0.15 ms, warm; docs/performance.md
"Prepared statements"). A cursor from `prepared_cursor` binds on the server
instead, and psycopg prepares each statement the first time a connection runs
it, then runs it by name.

Only these cursors prepare: Django's own bind on the client and never do, so
`prepare_threshold` 0 in the database options (rounds/settings.py) changes
nothing else. With `ROUNDS_DB_PREPARE=0` (a transaction-mode pooler in front of
PostgreSQL that cannot keep prepared statements), the threshold is None and
the same cursors bind on the server without preparing.

psycopg forgets a connection's prepared statements when a transaction rolls
back (and tells PostgreSQL to deallocate them): the next post prepares again.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from psycopg.types.numeric import Int8Dumper


class _LoggedPreparedCursor(CursorDebugWrapper):
    """A prepared cursor while Django logs queries (DEBUG, tests that capture them).

    Django logs the text psycopg last sent, which psycopg does not keep for a
    prepared statement: the statement is logged with its parameters bound on the
    client instead, as Django's own cursor would have sent it.
    """

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


def prepared_cursor() -> CursorWrapper:
    """A cursor for the statements a post runs every time (PostgreSQL only: the
    caller's SQL is written for server-side binding, each parameter's type known).

    Wrapped as `connection.cursor()` wraps Django's own, so that its statements
    raise Django's errors and are logged, captured by tests and seen by execute
    wrappers like any other.
    """
    assert connection.vendor == "postgresql", "prepared statements are PostgreSQL's"
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = psycopg.Cursor(connection.connection)  # binds on the server
    # psycopg sends an int as int2, int4 or int8 by its value, and a prepared statement
    # is kept per parameter types: a seq passing 32,767 would prepare it again. Every
    # int as bigint, the type of every id and number these statements take.
    cursor.adapters.register_dumper(int, Int8Dumper)
    if connection.queries_logged:
        return _LoggedPreparedCursor(cursor, connection)
    return CursorWrapper(cursor, connection)


@contextlib.contextmanager
def one_round_trip() -> Iterator[None]:
    """Statements executed inside are sent together and answered together (psycopg's
    pipeline mode); their rows are fetched after the block. PostgreSQL still runs
    them one after the other, each with a snapshot of its own under READ COMMITTED.

    An error is raised at the end of the block, as Django's error class.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline():
        yield
