"""A history page read by its statement written once (chat/actions.py HISTORY_PAGE):
the same page as the ORM's, by socket as by HTTP, and bounds the database would
refuse answered without asking it."""

import json
import uuid

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat.actions import check_history, check_post_message
from chat.events import MESSAGE_COLUMNS, dumps, message_row_payload
from chat.models import Message
from core.errors import NotFound
from rooms.access import LARGEST_ID
from tests.support import Hospital, sealed

pytestmark = pytest.mark.django_db


def posted(h: Hospital, count: int) -> None:
    for _ in range(count):
        cmid = uuid.uuid4().hex
        check_post_message(
            h.surgeon_bob, h.thread.pk, cmid, sealed(h, "surgeon_bob", h.thread, cmid)
        )


def by_orm(h: Hospital, before_seq: int, limit: int) -> list[dict]:
    rows = Message.objects.filter(thread_id=h.thread.pk, seq__lt=before_seq).order_by("-seq")
    return [message_row_payload(row) for row in rows.values_list(*MESSAGE_COLUMNS)[:limit]][::-1]


def test_a_page_is_the_page_the_orm_reads(hospital: Hospital):
    h = hospital
    posted(h, 5)
    page = check_history(h.nurse_alice, h.thread.pk, 5, 3)
    assert page["messages"] == by_orm(h, 5, 3)
    assert [m["seq"] for m in page["messages"]] == [2, 3, 4]
    assert page["has_more"] is True
    assert page["messages"][0]["created_at"].endswith("+00:00")  # aware, on SQLite too


def test_the_sockets_page_embeds_the_stored_text_and_reads_the_same(hospital: Hospital):
    h = hospital
    posted(h, 3)
    decoded = check_history(h.nurse_alice, h.thread.pk, None, 50)
    stored = check_history(h.nurse_alice, h.thread.pk, None, 50, stored_text=True)
    header = stored["messages"][0]["envelope"]["header"]
    assert isinstance(header, orjson.Fragment)
    assert json.loads(dumps(stored)) == json.loads(json.dumps(decoded))


def test_the_thread_and_the_page_are_read_in_one_round_trip_on_postgresql(hospital: Hospital):
    h = hospital
    posted(h, 2)
    with CaptureQueriesContext(connection) as queries:
        check_history(h.nurse_alice, h.thread.pk, None, 50)
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("SELECT")]
    # The thread with the caller's role, then the page: one query holding both on
    # PostgreSQL, one each on SQLite (a statement per query).
    assert len(reads) == (1 if connection.vendor == "postgresql" else 2)
    assert "rooms_membership" in reads[0] and "ORDER BY m.seq DESC" in reads[-1]


def test_an_outsider_gets_not_found_and_no_page(hospital: Hospital):
    h = hospital
    posted(h, 2)
    with pytest.raises(NotFound):
        check_history(h.nurse_ines, h.thread.pk, None, 50)


@pytest.mark.parametrize(
    ("before_seq", "seqs"),
    [(LARGEST_ID + 1, [1, 2]), (10**30, [1, 2]), (-(10**30), []), (0, []), (1, [])],
)
def test_a_bound_beyond_a_bigint_is_answered(hospital: Hospital, before_seq: int, seqs: list):
    h = hospital
    posted(h, 2)
    page = check_history(h.nurse_alice, h.thread.pk, before_seq, 50)
    assert [m["seq"] for m in page["messages"]] == seqs
