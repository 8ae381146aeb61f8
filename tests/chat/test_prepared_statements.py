"""A post's statements are prepared once per connection on PostgreSQL (rounds/prepared.py):
PostgreSQL parses and plans them the first time, then runs them by name."""

import os
import uuid

import pytest
from django.db import connection, transaction

from chat.actions import Post, check_post_messages
from chat.models import Message
from chat.numbering import take_post_numbers
from tests.support import Hospital, sealed

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="prepared statements are PostgreSQL's",
    ),
]


def post(h: Hospital, who: str = "surgeon_bob") -> Post:
    cmid = uuid.uuid4().hex
    return Post(h.user(who), h.thread.pk, cmid, sealed(h, who, h.thread, cmid))


def prepared_here() -> list[str]:
    """The statements prepared on this connection (PostgreSQL's own list)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
        return [row[0] for row in cursor.fetchall()]


def test_a_posts_three_statements_are_prepared_once(hospital: Hospital):
    h = hospital
    [first] = check_post_messages([post(h)])
    prepared = prepared_here()
    for part in ("UPDATE chat_thread", "rooms_membership", "INSERT INTO chat_message"):
        assert sum(part in statement for statement in prepared) == 1, (part, prepared)
    [second] = check_post_messages([post(h)])
    assert prepared_here() == prepared  # run by name, not prepared again
    assert (first["seq"], second["seq"]) == (1, 2)
    assert Message.objects.filter(thread=h.thread).count() == 2


def test_a_batch_of_another_size_is_a_statement_of_its_own(hospital: Hospital):
    h = hospital
    check_post_messages([post(h)])
    before = prepared_here()
    outcomes = check_post_messages([post(h), post(h, "nurse_alice")])
    assert [outcome["seq"] for outcome in outcomes] == [2, 3]
    added = [statement for statement in prepared_here() if statement not in before]
    assert len(added) == 1 and "INSERT INTO chat_message" in added[0]


def test_numbers_past_smallint_run_the_same_statements(hospital: Hospital):
    """psycopg would send 40,001 as int4 where 2 went as int2, and prepare the rows'
    statement again for the new parameter types: every int goes as bigint."""
    h = hospital
    check_post_messages([post(h)])
    before = prepared_here()
    type(h.thread).objects.filter(pk=h.thread.pk).update(last_seq=40_000)
    [stored] = check_post_messages([post(h)])
    assert stored["seq"] == 40_001
    assert prepared_here() == before


def test_with_preparation_off_the_same_statements_run_unprepared(hospital: Hospital):
    """ROUNDS_DB_PREPARE=0 (a pooler that cannot keep prepared statements) sets the
    connection's threshold to None: the post is stored, nothing is prepared."""
    h = hospital
    connection.ensure_connection()
    raw = connection.connection
    kept = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        [stored] = check_post_messages([post(h)])
        [again] = check_post_messages([post(h)])
    finally:
        raw.prepare_threshold = kept
    assert (stored["seq"], again["seq"]) == (1, 2)
    assert not [s for s in prepared_here() if "chat_thread" in s or "chat_message" in s]


def test_a_rollback_forgets_them_and_the_next_post_prepares_again(hospital: Hospital):
    """psycopg deallocates a connection's prepared statements when a transaction rolls
    back (the objects they name may have changed): the next post is stored all the same."""
    h = hospital
    check_post_messages([post(h)])
    assert prepared_here()
    with pytest.raises(RuntimeError), transaction.atomic():
        take_post_numbers({h.thread.pk: 1})
        raise RuntimeError("refused after the numbers were taken")
    assert prepared_here() == []
    [stored] = check_post_messages([post(h)])
    assert stored["seq"] == 2  # the rolled-back number was not used
    assert any("INSERT INTO chat_message" in s for s in prepared_here())
