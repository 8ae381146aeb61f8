"""Each post writes a row in chat_message and chat_event: no index there repeats the
leading column of another (chat/migrations/0010_posts_write_fewer_indexes.py)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def indexes(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]


@pytest.mark.parametrize("table", ["chat_message", "chat_event"])
def test_no_index_is_the_prefix_of_another(table: str):
    columns = indexes(table)
    for one in columns:
        longer = [other for other in columns if len(other) > len(one)]
        assert not [other for other in longer if other[: len(one)] == one], (one, columns)


def test_the_looked_up_columns_still_lead_an_index():
    """History (thread), retries (sender), resume (department) find their rows by index."""
    leading = {cols[0] for table in ("chat_message", "chat_event") for cols in indexes(table)}
    assert {"thread_id", "sender_id", "department_id"} <= leading
