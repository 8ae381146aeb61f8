"""The posting thread keeps its pooled connection from one batch to the next
(chat/consumers/batching.py), and gives it back when it is no longer fit for use."""

import os

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from chat.consumers import batching

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the pool is PostgreSQL's; without it, stale connections are closed as before",
    ),
]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s), pg_sleep(0.05)", [pid])


def held() -> object:
    """The posting thread's connection as a batch finds it, before it uses one."""
    return connection.connection


async def test_the_next_batch_finds_the_connection_the_last_one_used():
    await batching.in_posting_thread(backend_pid)
    first = await batching.in_posting_thread(held)
    assert first is not None
    assert await batching.in_posting_thread(held) is first


async def test_a_connection_idle_past_its_time_goes_back_to_the_pool(monkeypatch):
    await batching.in_posting_thread(backend_pid)
    monkeypatch.setattr(batching, "KEEP_IDLE_SECONDS", 0.0)
    assert await batching.in_posting_thread(held) is None


async def test_a_connection_the_server_ended_is_given_back_and_the_batch_gets_another():
    ended = await batching.in_posting_thread(backend_pid)
    await database_sync_to_async(terminate)(ended)  # another session ends the posting thread's
    again = await batching.in_posting_thread(backend_pid)
    assert again != ended


async def test_an_error_that_leaves_the_connection_unusable_gives_it_back():
    def fail_on_an_ended_connection() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(Exception):  # noqa: B017, PT011 (psycopg's or Django's, by timing)
        await batching.in_posting_thread(fail_on_an_ended_connection)
    assert await batching.in_posting_thread(held) is None
    assert await batching.in_posting_thread(backend_pid) > 0
