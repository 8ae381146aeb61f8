"""Which statements psycopg sent in a pipeline (rounds/prepared.py `one_round_trip`)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection
from psycopg import pq


@contextmanager
def statements_sent() -> Iterator[list[tuple[str, bool]]]:
    """Each statement run inside, and whether it went in a pipeline: sent without
    waiting for the answer to the one before, all answered together."""
    sent: list[tuple[str, bool]] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        in_pipeline = (
            connection.vendor == "postgresql"
            and connection.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF
        )
        sent.append((sql, in_pipeline))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield sent
