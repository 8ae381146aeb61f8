"""`access_thread`'s statement written once (rooms/access/threads.py) answers as the
ORM's `_with_caller_role` does, for every kind of caller."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from chat.models import Consult, ConsultState, Thread
from core.errors import NotFound
from rooms.access.threads import (
    LARGEST_ID,
    _with_caller_role,
    access_thread,
    access_thread_and_read,
    guest_role,
)
from tests.support import PERSONAS, Hospital

pytestmark = pytest.mark.django_db


def by_orm(user: User, thread: Thread) -> str | None:
    row = _with_caller_role(Thread.objects.filter(pk=thread.pk), user, "").get()
    return row.caller_role or guest_role(row.guest_state)


def by_statement(user: User, thread: Thread) -> str | None:
    try:
        return access_thread(user, thread.pk).caller_role
    except NotFound:
        return None


def by_statement_and_read(user: User, thread: Thread) -> str | None:
    """The same, with a read in the same round trip (a history page's way)."""
    try:
        granted, rows = access_thread_and_read(user, thread.pk, "SELECT %s", [7])
    except NotFound:
        return None
    assert rows == [(7,)]
    assert Thread.objects.filter(pk=thread.pk).values_list("title", "department_id").get() == (
        granted.title,
        granted.department_id,
    )
    return granted.caller_role


@pytest.mark.parametrize("read_after", ["record", "none"])
@pytest.mark.parametrize("state", [None, *ConsultState.values])
def test_every_caller_gets_the_role_the_orm_gives(
    hospital: Hospital, settings, state: str | None, read_after: str
):
    h = hospital
    settings.ROUNDS_CONSULT_READ_AFTER = read_after
    if state is not None:
        Consult.objects.create(thread=h.thread, guest=h.user("nurse_ines"), state=state)
    roles = {who: by_statement(h.user(who), h.thread) for who in PERSONAS}
    assert roles == {who: by_orm(h.user(who), h.thread) for who in PERSONAS}
    assert roles == {who: by_statement_and_read(h.user(who), h.thread) for who in PERSONAS}
    assert roles["head_carol"] == "head" and roles["intern_erin"] is None


def test_the_thread_and_the_role_come_in_one_statement(hospital: Hospital):
    h = hospital
    with CaptureQueriesContext(connection) as queries:
        thread = access_thread(h.user("surgeon_bob"), h.thread.pk)
    assert len(queries.captured_queries) == 1
    assert (thread.pk, thread.department_id, thread.title) == (
        h.thread.pk,
        h.plastic.pk,
        h.thread.title,
    )


@pytest.mark.parametrize("thread_id", [0, -1, LARGEST_ID + 1, 10**30])
def test_a_number_no_thread_can_have_is_not_found(hospital: Hospital, thread_id: int):
    with CaptureQueriesContext(connection) as queries, pytest.raises(NotFound):
        access_thread(hospital.user("surgeon_bob"), thread_id)
    with CaptureQueriesContext(connection) as reads, pytest.raises(NotFound):
        access_thread_and_read(hospital.user("surgeon_bob"), thread_id, "SELECT 1", [])
    assert queries.captured_queries == reads.captured_queries == []
